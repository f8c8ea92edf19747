-- Takes the next job for a worker, atomically, in one round trip: pops the first id from the
-- first non-empty queue (priority order) and marks the job started in RQ's data (status,
-- started_at, worker_name, the started-registry entry `<job_id>:<execution_id>`). The id is
-- never only in a reply: it moves from the queue to the started registry, so a worker killed at
-- any instant loses nothing (its execution lapses and is recovered).
--
-- RQ's per-execution records (the execution hash and index, the worker's executions set) are
-- written here for a lone worker (ARGV[5] "0": nothing heartbeats its executions), and the job
-- hash's `jobpool_records` field names the execution, so that its record removes them. A pool
-- worker's (a heartbeat ttl given) are left to its supervisor's next heartbeat, which writes
-- them for the executions still running then (lua/heartbeat.lua): most jobs end before it, and
-- never cost the three keys.
--
-- A take *ahead* (a pool worker's, sent as its current job starts) marks the job held: the job
-- hash's `jobpool_held` field names the execution until the job's record (lua/finish.lua,
-- lua/fail.lua) writes its start.
-- Recovery puts a held job back in its queue rather than failing it, and the supervisor may
-- take it back before it starts (lua/reclaim.lua), leaving KEYS[4] behind when it came first.
--
-- A retry (ARGV[9] = "1", after a lost reply) with the same execution id returns the job
-- that execution took instead of taking another (found by its started-registry member).
--
-- KEYS[1] the worker's executions set   KEYS[2] the worker hash   KEYS[3] the suspension flag
-- KEYS[4] the reclaimed marker of this execution id
-- KEYS[4+i] queue i list, KEYS[4+n+i] queue i started registry, for i = 1..n
-- While workers are suspended (`rq suspend`, `jobpool suspend`) it takes nothing.
-- ARGV[1] execution id   ARGV[2] worker name   ARGV[3] now, hash timestamp   ARGV[4] now, epoch float
-- ARGV[5] heartbeat ttl (seconds), or "0" to derive it from the job's timeout as RQ's
--         SimpleWorker does (timeout + 60; 420 when the job has no timeout) and write the
--         execution's records here
-- ARGV[6] job hash template   ARGV[7] execution hash template (this execution id filled in)
-- ARGV[8] executions index template
-- ARGV[9] "1" when this call repeats one whose reply was lost
-- ARGV[10] what the take does to the worker's state: "0" a plain take (busy when it takes a
--          job), "1" a take that follows the worker's record of its last job (idle when it
--          takes none), "2" a take ahead, while a job runs (the state is left alone)
-- ARGV[11] the default job timeout (seconds)
-- ARGV[12] "1" to mark the job held even in a take that is not ahead: a worker that works in
--          batches writes a job's start with its record (lua/finish.lua, lua/fail.lua), so
--          until then the job must not look started to recovery (it has not run, as far as
--          Redis can tell: it goes back to its queue rather than failing)
-- ARGV[13] n   ARGV[13+i] queue i name
-- Returns nil when every queue is empty, else
-- {queue name, job id, execution id, heartbeat ttl, {field, value, field, value, ...}}.

local execution_id, worker, now, now_float = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local n = tonumber(ARGV[13])
local now_seconds = math.floor(now_float)

local function reply(queue_name, job_id, ttl)
    return {queue_name, job_id, execution_id, tostring(ttl), redis.call("HGETALL", fill(ARGV[6], job_id))}
end

local state_rule = ARGV[10]
local held = state_rule == "2"
local marks_held = held or ARGV[12] == "1"
local records_at_take = ARGV[5] == "0"

local function heartbeat_ttl(timeout)
    local ttl = tonumber(ARGV[5])
    if ttl > 0 then
        return ttl
    end
    -- Checked before anything is written: a timeout another client stored that EXPIRE would
    -- refuse must not stop the script after its LPOP.
    timeout = stored_seconds(timeout)
    if timeout == nil or timeout > 315360000 then
        return tonumber(ARGV[11]) + 60 -- none, or not usable: the default
    elseif timeout == -1 then
        return 420
    end
    return math.max(timeout, 1) + 60
end

-- `job` holds the job's status (false when its hash is gone), timeout and ttl.
local function start(i, job_id, job_key, job)
    local ttl = heartbeat_ttl(job[2])
    local member = job_id .. ":" .. execution_id
    if marks_held then
        redis.call("HSET", job_key, "status", "started", "started_at", now, "last_heartbeat", now,
            "worker_name", worker, "jobpool_held", execution_id)
    elseif records_at_take then
        redis.call("HSET", job_key, "status", "started", "started_at", now, "last_heartbeat", now,
            "worker_name", worker, "jobpool_records", execution_id)
    else
        redis.call("HSET", job_key, "status", "started", "started_at", now, "last_heartbeat", now,
            "worker_name", worker)
    end
    if job[3] then
        redis.call("PERSIST", job_key) -- its ttl bounded only its wait in the queue
    end
    redis.call("ZADD", KEYS[4 + n + i], now_seconds + ttl, member)
    if records_at_take then
        write_execution_records(fill(ARGV[7], job_id), fill(ARGV[8], job_id), KEYS[1], job_id,
            execution_id, ARGV[4], ARGV[4], worker, ttl, now_seconds)
    end
    if state_rule == "0" and redis.call("EXISTS", KEYS[2]) == 1 then
        redis.call("HSET", KEYS[2], "state", "busy", "last_heartbeat", now)
    end
    return reply(ARGV[13 + i], job_id, ttl)
end

if ARGV[9] == "1" then
    for i = 1, n do
        local job_id = find_execution(KEYS[4 + n + i], execution_id)
        if job_id then
            local job = redis.call("HMGET", fill(ARGV[6], job_id), "timeout")
            return reply(ARGV[13 + i], job_id, heartbeat_ttl(job[1]))
        end
    end
end

if held and redis.call("DEL", KEYS[4]) == 1 then
    return nil -- its supervisor took this take back before Redis ran it
end
if suspended(KEYS[3]) then
    return nil
end
for i = 1, n do
    while true do
        local job_id = redis.call("LPOP", KEYS[4 + i])
        if not job_id then
            break
        end
        local job_key = fill(ARGV[6], job_id)
        local job = redis.call("HMGET", job_key, "status", "timeout", "ttl")
        if job[1] then
            return start(i, job_id, job_key, job)
        end
        -- An id whose job hash is gone (deleted, or expired by its ttl) is dropped, as RQ does.
    end
end
if state_rule == "1" and redis.call("EXISTS", KEYS[2]) == 1 then
    redis.call("HSET", KEYS[2], "state", "idle") -- its record left it busy; there is no next job
end
return nil
