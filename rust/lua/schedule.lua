-- Moves due scheduled jobs (enqueue_at / enqueue_in, and retries with an interval) onto their
-- queues, for each queue whose scheduler lock this scheduler holds or takes. The lock is RQ's
-- own (value: the scheduler's name, 61 s), so one scheduler runs per queue, RQ's or jobpool's.
--
-- KEYS, for each queue i = 1..n: scheduler lock, scheduled registry, queue list, wake-up list
-- ARGV[1] scheduler name   ARGV[2] now, epoch seconds   ARGV[3] now, hash timestamp
-- ARGV[4] job hash template   ARGV[5] the most jobs to move per queue   ARGV[6] n
-- Returns how many jobs it moved.

local moved = 0
for i = 1, tonumber(ARGV[6]) do
    local lock, scheduled, queue, wakeup = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
    local holder = redis.call("GET", lock)
    if not holder then
        redis.call("SET", lock, ARGV[1], "EX", 61)
        holder = ARGV[1]
    elseif holder == ARGV[1] then
        redis.call("EXPIRE", lock, 61)
    end
    if holder == ARGV[1] then
        local due = redis.call("ZRANGEBYSCORE", scheduled, "-inf", ARGV[2], "LIMIT", 0, ARGV[5])
        for _, job_id in ipairs(due) do
            local job_key = fill(ARGV[4], job_id)
            local job = redis.call("HMGET", job_key, "status", "enqueue_at_front", "enqueue_at_front_on_retry")
            if job[1] then
                redis.call("HSET", job_key, "status", "queued", "enqueued_at", ARGV[3])
                push_job(queue, wakeup, job_id, job[2] == "1" or job[3] == "1")
                moved = moved + 1
            end
            redis.call("ZREM", scheduled, job_id)
        end
    end
end
return moved
