-- Records a failed, stopped or abandoned execution, in one round trip, as RQ does; or one whose
-- job returned a Retry ("retry", "max_retries_exceeded": below). An abandoned execution of a
-- job still held (taken ahead by a worker that vanished before it started it: see take.lua) is
-- put back at the front of its queue and returns "released", as lua/release.lua puts back a
-- held job its worker gives up. A held job may also be stopped (a stop-job command
-- relayed by the supervisor): it is no longer held, and ends stopped. A failed or
-- abandoned job with retries left goes back to its queue, or to the scheduled registry when
-- its retry interval is not zero, and writes no result; otherwise it ends in the failed
-- registry (status failed, or stopped) with its traceback in the job hash and the results
-- stream. Stopped jobs are never retried. When the execution is no longer in the started
-- registry (recorded already, recovered, or its job canceled or deleted) it only forgets the
-- execution and returns "stale"; for "abandoned", it does nothing and returns "stale" when the
-- execution is gone or its heartbeat came back. When the job hash is gone (deleted while it ran
-- or was held), nothing is written about the job and it returns "deleted".
--
-- A job that returned a Retry is recorded as RQ 3.0's worker records it, whatever its
-- retries_left: "retry" sets its number_of_retries (the worker counted it from the job it ran)
-- and sends it back to its queue, or to the scheduled registry for a non-zero interval, with a
-- RETRIED result (type 4) holding the Retry; "max_retries_exceeded" fails it as any failure is
-- (failed registry, dependents released) but with a MAX_RETRIES_EXCEEDED result (type 5) holding
-- the Retry and no traceback.
--
-- Everything that can fail (retry_intervals, retries_left and failure_ttl as another client
-- stored them, the worker's counters) is read and checked before the first write, since Redis
-- keeps the writes of a script that errors: unusable intervals mean a retry at once, an
-- unusable failure_ttl the default (one year).
--
-- KEYS[1] job hash   KEYS[2] started registry   KEYS[3] execution hash   KEYS[4] executions index
-- KEYS[5] results stream   KEYS[6] failed registry   KEYS[7] job dependents set
-- KEYS[8] job dependencies set   KEYS[9] the queues set   KEYS[10] queue list
-- KEYS[11] scheduled registry   KEYS[12] the queue's wake-up list
-- KEYS[13] worker hash, KEYS[14] worker executions set: absent when the worker is unknown
-- ARGV[1] job id   ARGV[2] execution id   ARGV[3] worker name   ARGV[4] now, hash timestamp
-- ARGV[5] now, epoch float   ARGV[6] "failed", "stopped", "abandoned", "retry" or
--         "max_retries_exceeded"
-- ARGV[7] exc_info for the job hash (zlib of the traceback)
-- ARGV[8] exc_string for the results stream (base64 of the zlib)
-- ARGV[9] the execution's start, epoch float   ARGV[10] seconds it worked
-- ARGV[11] "1" when the worker takes its next job in the same round trip (it stays busy)
-- ARGV[12] the execution's start as a hash timestamp, to write as its job's started_at if the job
--          is still marked held by this execution (see finish.lua), or ""
-- ARGV[13] "retry" and "max_retries_exceeded": the Retry (base64 of the serialized value)
-- ARGV[14..16] "retry": number_of_retries once counted, seconds until it runs again (0: onto its
--          queue now), "1" to push it onto the queue's head
-- The key templates are the step's (step_templates in the library).
-- Returns "failed", "stopped", "retried", "scheduled", "released", "stale" or, for an
-- abandoned execution whose job is no longer started, "cleared"; or "deleted".
--
-- A job with a rate limit frees its slot and promotes waiting jobs (see the library) when it ends
-- anywhere but back on its queue (failed, stopped, or scheduled for a retry), as RQ's release_slot
-- does, abandoned ones included; one canceled as it ran frees it too.

local DEFAULT_FAILURE_TTL = 31536000
local job_key, job_id, execution_id, outcome = KEYS[1], ARGV[1], ARGV[2], ARGV[6]
local now, now_seconds = ARGV[4], math.floor(tonumber(ARGV[5]))
local worker_key = KEYS[13]
local takes_next = ARGV[11] == "1"
-- An empty execution id stands for a bare job id, as RQ before 2.0 wrote started members.
local member = execution_id == "" and job_id or job_id .. ":" .. execution_id

local job = redis.call("HMGET", job_key, "status", "retries_left", "retry_intervals",
    "enqueue_at_front_on_retry", "failure_ttl", "jobpool_held", "jobpool_records", "rate_limit_key",
    "rate_limit_concurrency")
local job_exists = job[1] ~= false -- every job has a status: none, no hash (deleted)
local retries_left = stored_count(job[2])
local retries = (outcome == "failed" or outcome == "abandoned") and retries_left > 0
local interval = retries and retry_interval(job[3], retries_left) or 0
local failure_ttl = stored_seconds(job[5])
local count_it = worker_counting(worker_key, "failed_job_count", finite_seconds(ARGV[10]))
local templates = step_templates
local limit = has_rate_limit(job[8], job[9]) and job[8]
-- Frees the job's slot, if it has a rate limit (it ended somewhere but on its queue).
local function release_slot()
    if limit then
        release_rate_limit_slot(templates, limit, job_id, now, now_seconds, false)
    end
end

if outcome == "abandoned" then
    local score = redis.call("ZSCORE", KEYS[2], member)
    if not score or tonumber(score) > now_seconds then
        return "stale"
    end
end
local recorded = redis.call("ZREM", KEYS[2], member) == 1
-- An abandoned execution may be another worker's (RQ's own workers write no `jobpool_records`).
if not job_exists or job[7] == execution_id or outcome == "abandoned" then
    end_execution(KEYS[3], KEYS[4], KEYS[14], job_id, execution_id)
end
if count_it and not takes_next then
    redis.call("HSET", worker_key, "state", "idle")
end
if not recorded or job[1] == "canceled" then
    if limit and job[1] == "canceled" then
        release_rate_limit_slot(templates, limit, job_id, now, now_seconds, true)
    end
    return "stale" -- a job canceled as it ran stays canceled (see finish.lua)
end
if outcome == "abandoned" and job[6] == execution_id then
    -- Taken ahead by a worker that vanished before it started the job: it never ran.
    put_back_held(job_key, KEYS[10], KEYS[12], job_id)
    return "released"
end
if outcome == "abandoned" and job[1] ~= "started" then
    return "cleared"
end
if count_it then
    count_it()
end
if not job_exists then
    -- A parent that is gone is met.
    release_dependents(KEYS[7], KEYS[9], job_id, false, templates, now, ARGV[5])
    return "deleted"
end
if job[6] == execution_id then
    -- A job of a batch, whose start is written with its record; or one stopped while its worker
    -- held it, before it began.
    redis.call("HDEL", job_key, "jobpool_held")
    if ARGV[12] ~= "" then
        redis.call("HSET", job_key, "started_at", ARGV[12])
    end
end

-- Appends the execution's result (`fields` first) to the job's results stream, which lives as
-- long as the job's failure_ttl says (for ever with none), as RQ's Result.save does. As RQ's
-- cleanup records it, an abandoned job's result names no execution.
local function add_result(fields)
    if outcome ~= "abandoned" then
        for _, item in ipairs({"execution_id", execution_id, "execution_started_at", ARGV[9],
            "execution_ended_at", ARGV[5]}) do
            fields[#fields + 1] = item
        end
    end
    redis.call("XADD", KEYS[5], "MAXLEN", "~", "10", "*", unpack(fields))
    if failure_ttl == -1 then
        redis.call("PERSIST", KEYS[5])
    elseif failure_ttl then
        redis.call("EXPIRE", KEYS[5], whole(failure_ttl))
    end
end

if outcome == "retry" then
    local at_front, returned_interval = ARGV[16] == "1", tonumber(ARGV[15])
    redis.call("HSET", job_key, "number_of_retries", ARGV[14], "ended_at", now, "last_heartbeat", now)
    if at_front then
        redis.call("HSET", job_key, "enqueue_at_front_on_retry", "1")
    end
    add_result({"type", "4", "worker_name", ARGV[3], "return_value", ARGV[13]})
    if returned_interval > 0 then
        redis.call("HSET", job_key, "status", "scheduled")
        redis.call("ZADD", KEYS[11], now_seconds + returned_interval, job_id)
        release_slot()
        return "scheduled"
    end
    redis.call("HSET", job_key, "status", "queued", "enqueued_at", now)
    push_job(KEYS[10], KEYS[12], job_id, at_front)
    return "retried"
end

if retries then
    redis.call("HSET", job_key, "retries_left", whole(retries_left - 1), "ended_at", now)
    if interval > 0 then
        redis.call("HSET", job_key, "status", "scheduled")
        redis.call("ZADD", KEYS[11], now_seconds + interval, job_id)
        release_slot()
        return "scheduled"
    end
    redis.call("HSET", job_key, "status", "queued", "enqueued_at", now)
    push_job(KEYS[10], KEYS[12], job_id, job[4] == "1")
    return "retried"
end

local status = outcome == "stopped" and "stopped" or "failed"
if outcome == "max_retries_exceeded" then
    redis.call("HSET", job_key, "status", status, "ended_at", now, "last_heartbeat", now)
    add_result({"type", "5", "worker_name", ARGV[3], "return_value", ARGV[13]})
else
    redis.call("HSET", job_key, "status", status, "ended_at", now, "exc_info", ARGV[7])
    add_result({"type", "2", "worker_name", ARGV[3], "exc_string", ARGV[8]})
end
local keep_for = failure_ttl or DEFAULT_FAILURE_TTL
if keep_for == -1 then
    redis.call("ZADD", KEYS[6], "+inf", job_id)
    redis.call("PERSIST", job_key)
else
    redis.call("ZADD", KEYS[6], now_seconds + keep_for, job_id)
    redis.call("EXPIRE", job_key, whole(keep_for))
    redis.call("EXPIRE", KEYS[8], whole(keep_for))
end
release_dependents(KEYS[7], KEYS[9], job_id, false, templates, now, ARGV[5])
release_slot()
return status
