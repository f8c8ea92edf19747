-- Moves a job out of a registry (failed, usually) and back onto its queue, as a fresh
-- attempt: started_at, ended_at and exc_info are cleared.
--
-- KEYS[1] the registry   KEYS[2] job hash   KEYS[3] queue list   KEYS[4] the queues set
-- KEYS[5] the queue's wake-up list
-- ARGV[1] job id   ARGV[2] "1": at front   ARGV[3] queue key   ARGV[4] now, hash timestamp
-- ARGV[5] now, epoch seconds   ARGV[6..8] templates: job hash, queue list, wake-up list
-- ARGV[9..12] rate-limit templates: config hash, allowed set, rate_limited set; the rl-keys set
-- Returns 1, or 0 when the job was not in the registry (nothing is written then). A job with a
-- rate limit waits for a slot instead of going onto its queue, as RQ requeues it, its
-- enqueue_at_front set to ARGV[2] for when it is promoted (see the library).

if redis.call("ZREM", KEYS[1], ARGV[1]) == 0 then
    return 0
end
local limit = redis.call("HMGET", KEYS[2], "rate_limit_key", "rate_limit_concurrency")
if has_rate_limit(limit[1], limit[2]) then
    local templates = {job = ARGV[6], queue = ARGV[7], wakeup = ARGV[8], rate_limit = ARGV[9],
        rate_limit_allowed = ARGV[10], rate_limit_waiting = ARGV[11], rate_limit_keys = ARGV[12]}
    local at_front = ARGV[2] == "1" and "1" or "0"
    redis.call("HSET", KEYS[2], "started_at", "", "ended_at", "", "enqueue_at_front", at_front)
    redis.call("HDEL", KEYS[2], "exc_info")
    redis.call("SADD", KEYS[4], ARGV[3])
    wait_for_rate_limit(templates, KEYS[2], ARGV[1], limit[1], limit[2], ARGV[4],
        math.floor(tonumber(ARGV[5])))
    return 1
end
redis.call("HSET", KEYS[2], "status", "queued", "enqueued_at", ARGV[4], "started_at", "", "ended_at", "")
redis.call("HDEL", KEYS[2], "exc_info")
redis.call("SADD", KEYS[4], ARGV[3])
push_job(KEYS[3], KEYS[5], ARGV[1], ARGV[2] == "1")
return 1
