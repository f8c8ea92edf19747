-- Moves due scheduled jobs (enqueue_at / enqueue_in, and retries with an interval) onto their
-- queues, for each queue whose scheduler lock this scheduler holds or takes. The lock is RQ's
-- own (value: the scheduler's name, 61 s), so one scheduler runs per queue, RQ's or jobpool's.
--
-- KEYS, for each queue i = 1..n: scheduler lock, scheduled registry, queue list, wake-up list
-- ARGV[1] scheduler name   ARGV[2] now, epoch seconds   ARGV[3] now, hash timestamp
-- ARGV[4] job hash template   ARGV[5] the most jobs to move per queue   ARGV[6] n
-- ARGV[7..8] templates: queue list, wake-up list
-- ARGV[9..12] rate-limit templates: config hash, allowed set, rate_limited set; the rl-keys set
-- Returns how many jobs it moved. A job with a rate limit waits for a slot instead, as RQ's
-- scheduler enqueues it (see the library): it counts as moved.

local templates = {job = ARGV[4], queue = ARGV[7], wakeup = ARGV[8], rate_limit = ARGV[9],
    rate_limit_allowed = ARGV[10], rate_limit_waiting = ARGV[11], rate_limit_keys = ARGV[12]}
local now_seconds = math.floor(tonumber(ARGV[2]))

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
            local job = redis.call("HMGET", job_key, "status", "enqueue_at_front",
                "enqueue_at_front_on_retry", "rate_limit_key", "rate_limit_concurrency")
            if job[1] and has_rate_limit(job[4], job[5]) then
                redis.call("ZREM", scheduled, job_id)
                wait_for_rate_limit(templates, job_key, job_id, job[4], job[5], ARGV[3], now_seconds)
                moved = moved + 1
            elseif job[1] then
                redis.call("HSET", job_key, "status", "queued", "enqueued_at", ARGV[3])
                push_job(queue, wakeup, job_id, job[2] == "1" or job[3] == "1")
                moved = moved + 1
            end
            redis.call("ZREM", scheduled, job_id)
        end
    end
end
return moved
