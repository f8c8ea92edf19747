-- The supervisor takes back a job that one of its workers took ahead and has not started (the
-- ledger gave it the hold: see rust/ledger.rs): the job goes back to the front of its queue, as
-- it was before the take, and its execution is forgotten. The supervisor knows the execution id
-- only, so the job is found by its started-registry member `<job_id>:<execution_id>`. When no
-- queue has it, the take has not run yet (or took nothing): the reclaimed marker KEYS[1] makes
-- that take take nothing when it runs (take.lua). A holder that knows its job (the worker, or the
-- supervisor settling a dead worker's holds) puts it back through release.lua; both put it back
-- with the library's put_back_held.
--
-- KEYS[1] the reclaimed marker of the execution id   KEYS[2] the worker's executions set
-- KEYS[2+i] queue i started registry, KEYS[2+n+i] queue i list, KEYS[2+2n+i] queue i wake-up list
-- ARGV[1] execution id   ARGV[2] n   ARGV[3] job hash template
-- ARGV[4] execution hash template (this execution id filled in)   ARGV[5] executions index template
-- ARGV[6] seconds the marker lives   ARGV[6+i] queue i name
-- Returns {"released", job id, queue name} or {"absent"}.

local execution_id, n = ARGV[1], tonumber(ARGV[2])
for i = 1, n do
    local job_id = find_execution(KEYS[2 + i], execution_id)
    if job_id then
        redis.call("ZREM", KEYS[2 + i], job_id .. ":" .. execution_id)
        end_execution(fill(ARGV[4], job_id), fill(ARGV[5], job_id), KEYS[2], job_id, execution_id)
        local job_key = fill(ARGV[3], job_id)
        if redis.call("EXISTS", job_key) == 1 then
            put_back_held(job_key, KEYS[2 + n + i], KEYS[2 + 2 * n + i], job_id)
        end
        return {"released", job_id, ARGV[6 + i]}
    end
end
redis.call("SET", KEYS[1], "1", "EX", ARGV[6])
return {"absent"}
