-- Takes a job's executions out of its queue's started registry, as RQ 3.0's cancel and delete
-- do for a started job: a job canceled or deleted while it runs (or while a worker holds it,
-- taken ahead) is then in no started registry, and its worker's record, finding the execution
-- gone, writes nothing about the job (finish.lua and fail.lua return "stale"). With ARGV[4] =
-- "1" (delete), the executions go too: their hashes, their members of their workers'
-- executions sets, and the job's executions index.
--
-- KEYS[1] the job's executions index   KEYS[2] the started registry of the job's queue
-- ARGV[1] job id   ARGV[2] execution hash template (the job id filled in, "\0" for the execution id)
-- ARGV[3] worker executions set template ("\0" for the worker name)   ARGV[4] "1": delete them
-- Returns how many executions it took out of the started registry.

local job_id, delete = ARGV[1], ARGV[4] == "1"
local removed = 0
for _, execution_id in ipairs(redis.call("ZRANGE", KEYS[1], 0, -1)) do
    local member = job_id .. ":" .. execution_id
    removed = removed + redis.call("ZREM", KEYS[2], member)
    if delete then
        local execution_key = fill(ARGV[2], execution_id)
        local worker = redis.call("HGET", execution_key, "worker_name")
        if worker and worker ~= "" then
            redis.call("SREM", fill(ARGV[3], worker), member)
        end
        redis.call("DEL", execution_key)
    end
end
if delete then
    redis.call("DEL", KEYS[1])
end
return removed
