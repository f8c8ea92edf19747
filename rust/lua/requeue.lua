-- Moves a job out of a registry (failed, usually) and back onto its queue, as a fresh
-- attempt: started_at, ended_at and exc_info are cleared.
--
-- KEYS[1] the registry   KEYS[2] job hash   KEYS[3] queue list   KEYS[4] the queues set
-- KEYS[5] the queue's wake-up list
-- ARGV[1] job id   ARGV[2] "1": at front   ARGV[3] queue key   ARGV[4] now, hash timestamp
-- Returns 1, or 0 when the job was not in the registry (nothing is written then).

if redis.call("ZREM", KEYS[1], ARGV[1]) == 0 then
    return 0
end
redis.call("HSET", KEYS[2], "status", "queued", "enqueued_at", ARGV[4], "started_at", "", "ended_at", "")
redis.call("HDEL", KEYS[2], "exc_info")
redis.call("SADD", KEYS[4], ARGV[3])
push_job(KEYS[3], KEYS[5], ARGV[1], ARGV[2] == "1")
return 1
