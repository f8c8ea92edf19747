-- A pool worker starts a job it took ahead (see take.lua): the job is no longer held, its
-- started_at becomes the real start, and the worker is busy. Sent with the worker's next step,
-- in the same round trip. Writes nothing to a job hash that is gone (deleted meanwhile), nor to
-- one whose hold is not this execution's.
--
-- KEYS[1] job hash   KEYS[2] worker hash
-- ARGV[1] execution id   ARGV[2] now, hash timestamp
-- Returns 1 when the job was held by this execution, else 0.

local started = 0
if redis.call("HGET", KEYS[1], "jobpool_held") == ARGV[1] then
    redis.call("HDEL", KEYS[1], "jobpool_held")
    redis.call("HSET", KEYS[1], "started_at", ARGV[2])
    started = 1
end
if redis.call("EXISTS", KEYS[2]) == 1 then
    redis.call("HSET", KEYS[2], "state", "busy")
end
return started
