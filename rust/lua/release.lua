-- Puts back a job its worker took ahead (held) and never started: the worker gives it up as it
-- stops, or its supervisor does for a worker that died holding it. The job goes back to the
-- front of its queue, as it was before the take, and its execution is forgotten (its
-- started-registry entry, and its records if they were written). When the execution is no
-- longer in the started registry (put back already, taken back by the supervisor: see
-- lua/reclaim.lua, recovered, or its job canceled or deleted) it only forgets the execution and
-- returns "stale"; a job canceled meanwhile stays canceled, and frees its rate-limit slot if it
-- held one. When the job hash is gone, nothing is written about the job and it returns
-- "deleted". The worker, if its hash exists, is left idle. Safe to repeat.
--
-- KEYS[1] job hash   KEYS[2] started registry   KEYS[3] execution hash   KEYS[4] executions index
-- KEYS[5] queue list   KEYS[6] the queue's wake-up list   KEYS[7] worker hash
-- KEYS[8] worker executions set
-- ARGV[1] job id   ARGV[2] execution id   ARGV[3] now, hash timestamp   ARGV[4] now, epoch float
-- ARGV[5..7] templates: job hash, queue list, wake-up list
-- ARGV[8..11] rate-limit templates: config hash, allowed set, rate_limited set; the rl-keys set
-- Returns "released", "stale" or "deleted".

local job_key, job_id, execution_id = KEYS[1], ARGV[1], ARGV[2]
local job = redis.call("HMGET", job_key, "status", "jobpool_records", "rate_limit_key",
    "rate_limit_concurrency")
local job_exists = job[1] ~= false -- every job has a status: none, no hash (deleted)
local recorded = redis.call("ZREM", KEYS[2], job_id .. ":" .. execution_id) == 1
if not job_exists or job[2] == execution_id then
    end_execution(KEYS[3], KEYS[4], KEYS[8], job_id, execution_id)
end
if redis.call("EXISTS", KEYS[7]) == 1 then
    redis.call("HSET", KEYS[7], "state", "idle")
end
if not recorded or job[1] == "canceled" then
    if job[1] == "canceled" and has_rate_limit(job[3], job[4]) then
        local templates = {job = ARGV[5], queue = ARGV[6], wakeup = ARGV[7], rate_limit = ARGV[8],
            rate_limit_allowed = ARGV[9], rate_limit_waiting = ARGV[10], rate_limit_keys = ARGV[11]}
        release_rate_limit_slot(templates, job[3], job_id, ARGV[3], math.floor(tonumber(ARGV[4])), true)
    end
    return "stale"
end
if not job_exists then
    return "deleted"
end
put_back_held(job_key, KEYS[5], KEYS[6], job_id)
return "released"
