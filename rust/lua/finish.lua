-- Records a successful execution, in one round trip, as RQ does: status finished, ended_at, the
-- result stream entry, the finished registry and the job's TTLs per result_ttl, dependents
-- released, the worker's counters, and the execution forgotten. When the execution is no
-- longer in the started registry (it was recorded already by a repeated call, recovered as
-- abandoned, or its job was canceled or deleted), or its job was canceled while it ran (RQ's
-- cancel leaves the started entry of an execution whose records the pool has not written yet:
-- see take.lua), it only forgets the execution and returns "stale". When the job hash is gone (deleted while it ran), nothing is written about the job
-- (no stub hash, result or registry entry) and it returns "deleted".
--
-- Everything that can fail (a result_ttl another client stored, the worker's counters) is read
-- and checked before the first write, since Redis keeps the writes of a script that errors: an
-- unusable result_ttl falls back to the default.
--
-- KEYS[1] job hash   KEYS[2] started registry   KEYS[3] execution hash   KEYS[4] executions index
-- KEYS[5] results stream   KEYS[6] finished registry   KEYS[7] job dependents set
-- KEYS[8] job dependencies set   KEYS[9] the queues set   KEYS[10] worker hash
-- KEYS[11] worker executions set
-- ARGV[1] job id   ARGV[2] execution id   ARGV[3] worker name   ARGV[4] now, hash timestamp
-- ARGV[5] now, epoch float   ARGV[6] result_ttl when the job sets none (RQ's default: 500)
-- ARGV[7] return value (base64 of the serialized value), or "" for None
-- ARGV[8] the execution's start, epoch float   ARGV[9] seconds it worked
-- ARGV[10] "1" when the worker takes its next job in the same round trip (it stays busy)
-- ARGV[11] the execution's start as a hash timestamp, to write as its job's started_at if the job
--          is still marked held by this execution (a worker that works in batches writes a job's
--          start with its record, see take.lua), or ""
-- The key templates are the step's (step_templates in the library).
-- Returns "finished", "stale" or "deleted".
--
-- A job with repeats left (RQ's Repeat: its hash's repeats_left and repeat_intervals) is recorded
-- finished, result and finished-registry entry included, then goes back onto its queue, or into
-- the scheduled registry when its next interval is not zero, as RQ's Repeat.schedule sends it,
-- one repeat fewer; its hash keeps no result_ttl expiry then (its ttl, if any, applies again).
-- A job with a rate limit frees its slot and promotes waiting jobs (see the library), unless a
-- repeat put it straight back onto its queue; one canceled as it ran frees it too. Neither costs
-- a job without them more than three more fields in the first read.

local job_key, job_id, execution_id = KEYS[1], ARGV[1], ARGV[2]
local now, now_seconds = ARGV[4], math.floor(tonumber(ARGV[5]))
local worker_key = KEYS[10]
local takes_next = ARGV[10] == "1"

local job = redis.call("HMGET", job_key, "result_ttl", "dependency_ids", "status", "jobpool_held",
    "jobpool_records", "repeats_left", "rate_limit_key", "rate_limit_concurrency")
local job_exists = job[3] ~= false -- every job has a status: none, no hash (deleted)
local result_ttl = stored_seconds(job[1]) or stored_seconds(ARGV[6]) or 500
local count_it = worker_counting(worker_key, "successful_job_count", finite_seconds(ARGV[9]))
local templates = step_templates
local limit = has_rate_limit(job[7], job[8]) and job[7]
local again = stored_count(job[6]) > 0 and next_repeat(job_key, stored_count(job[6])) or nil

local recorded = redis.call("ZREM", KEYS[2], job_id .. ":" .. execution_id) == 1
if not job_exists or job[5] == execution_id then
    end_execution(KEYS[3], KEYS[4], KEYS[11], job_id, execution_id)
end
if count_it and not takes_next then
    redis.call("HSET", worker_key, "state", "idle")
end
if not recorded or job[3] == "canceled" then
    if limit and job[3] == "canceled" then
        release_rate_limit_slot(templates, limit, job_id, now, now_seconds, true)
    end
    return "stale" -- a job canceled as it ran stays canceled (see the header)
end
if count_it then
    count_it()
end
if not job_exists then
    -- A parent that is gone is met.
    release_dependents(KEYS[7], KEYS[9], job_id, false, templates, now, ARGV[5])
    return "deleted"
end

if ARGV[11] ~= "" and job[4] == execution_id then
    redis.call("HDEL", job_key, "jobpool_held")
    redis.call("HSET", job_key, "status", "finished", "ended_at", now, "last_heartbeat", now,
        "started_at", ARGV[11])
else
    redis.call("HSET", job_key, "status", "finished", "ended_at", now, "last_heartbeat", now)
end
release_dependents(KEYS[7], KEYS[9], job_id, false, templates, now, ARGV[5])
if again then
    repeat_job(job_key, job_id, again, templates, now, ARGV[5])
end
if limit and not (again and again.interval == 0) then
    release_rate_limit_slot(templates, limit, job_id, now, now_seconds, false)
end

if result_ttl == 0 then
    if not again then
        redis.call("DEL", job_key, KEYS[7], KEYS[8], KEYS[5])
    end
    return "finished"
end
local result = {"type", "1", "worker_name", ARGV[3]}
if ARGV[7] ~= "" then
    result[#result + 1] = "return_value"
    result[#result + 1] = ARGV[7]
end
for _, item in ipairs({"execution_id", execution_id, "execution_started_at", ARGV[8],
    "execution_ended_at", ARGV[5]}) do
    result[#result + 1] = item
end
redis.call("XADD", KEYS[5], "MAXLEN", "~", "10", "*", unpack(result))
if result_ttl == -1 then
    redis.call("PERSIST", KEYS[5])
    redis.call("ZADD", KEYS[6], "+inf", job_id)
    if not again then
        redis.call("PERSIST", job_key)
    end
else
    redis.call("EXPIRE", KEYS[5], whole(result_ttl))
    redis.call("ZADD", KEYS[6], now_seconds + result_ttl, job_id)
    if not again then
        redis.call("EXPIRE", job_key, whole(result_ttl))
        if job[2] then
            redis.call("EXPIRE", KEYS[8], whole(result_ttl))
        end
    end
end
return "finished"
