-- Saves a new job and puts it where it belongs, atomically, in one round trip:
-- its queue (or its front), the scheduled registry, or the deferred registry when a parent
-- has not finished yet.
--
-- KEYS[1] job hash            KEYS[2] job's dependencies set   KEYS[3] the queues set
-- KEYS[4] queue list          KEYS[5] deferred registry        KEYS[6] scheduled registry
-- KEYS[7] the queue's wake-up list
-- KEYS[8 .. 7+n]    parent job hashes
-- KEYS[8+n .. 7+2n] parent dependents sets
-- ARGV[1] job id      ARGV[2] queue key (the queues set's member)
-- ARGV[3] "1": at front; "inline": a job its producer runs itself (a queue with is_async=False):
--         saved as any job, but never put on its queue; "rate_limited": a job with a rate limit,
--         saved rate_limited rather than queued (rate_limit_acquire.lua, run next in the same
--         transaction, makes it wait for a slot)
-- ARGV[4] "1": unique (fail if the job exists)   ARGV[5] "1": parents may fail
-- ARGV[6] ttl seconds or ""   ARGV[7] now, epoch seconds   ARGV[8] now, hash timestamp
-- ARGV[9] scheduled time, epoch seconds, or ""   ARGV[10] n (parents)
-- ARGV[11 .. 10+n] parent ids
-- ARGV[11+n ..] the job hash's fields and values (without status and enqueued_at)
-- Returns the job's new status, or "duplicate" for a unique job whose id exists. A ttl or
-- scheduled time that EXPIRE or ZADD would refuse is an error, raised before anything is
-- written (the producer checks them first; this keeps a bad call from leaving half a job).

local job_key = KEYS[1]
local job_id = ARGV[1]
local n = tonumber(ARGV[10])
local ttl = ARGV[6] ~= "" and stored_seconds(ARGV[6]) or nil
if ARGV[6] ~= "" and not (ttl and ttl > 0) then
    return redis.error_reply("ERR jobpool enqueue: ttl " .. ARGV[6]
        .. " is not a positive whole number of seconds")
end
local scheduled_at = tonumber(ARGV[9])
if ARGV[9] ~= "" and not (scheduled_at and scheduled_at == scheduled_at) then
    return redis.error_reply("ERR jobpool enqueue: scheduled time " .. ARGV[9] .. " is not a number")
end

if ARGV[4] == "1" and redis.call("EXISTS", job_key) == 1 then
    return "duplicate"
end

local status
if ARGV[9] ~= "" then
    status = "scheduled"
else
    status = "queued"
    for i = 1, n do
        local parent_status = redis.call("HGET", KEYS[7 + i], "status")
        if not dependency_met(parent_status, ARGV[5] == "1") then
            status = "deferred"
            break
        end
    end
    if status == "queued" and ARGV[3] == "rate_limited" then
        status = "rate_limited"
    end
end

local fields = {"status", status}
for i = 11 + n, #ARGV do
    fields[#fields + 1] = ARGV[i]
end
if status == "queued" then
    fields[#fields + 1] = "enqueued_at"
    fields[#fields + 1] = ARGV[8]
end
redis.call("HSET", job_key, unpack(fields))
redis.call("SADD", KEYS[3], ARGV[2])

if status == "queued" then
    if ARGV[3] ~= "inline" then
        push_job(KEYS[4], KEYS[7], job_id, ARGV[3] == "1")
    end
elseif status == "scheduled" then
    redis.call("ZADD", KEYS[6], ARGV[9], job_id)
elseif status == "deferred" then
    redis.call("ZADD", KEYS[5], ARGV[7], job_id)
end

-- The dependency links are recorded whatever the status, so a finishing parent can find them.
for i = 1, n do
    redis.call("SADD", KEYS[7 + n + i], job_id)
    redis.call("SADD", KEYS[2], ARGV[10 + i])
end

if ttl then
    redis.call("EXPIRE", job_key, whole(ttl))
    if n > 0 then
        redis.call("EXPIRE", KEYS[2], whole(ttl))
    end
end
return status
