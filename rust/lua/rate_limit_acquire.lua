-- Makes a job enqueue.lua saved as rate_limited (a job with a rate limit, RQ's
-- _enqueue_rate_limited_job) wait for a slot of its limit, registering the limit, and fills the
-- limit's free slots, oldest first (see the library). Run in the enqueue's transaction. A job
-- that enqueue.lua deferred instead (a parent not finished) is left alone.
--
-- KEYS[1] job hash
-- ARGV[1] job id   ARGV[2] the limit's name   ARGV[3] its concurrency
-- ARGV[4] now, hash timestamp   ARGV[5] now, epoch seconds
-- ARGV[6..8] templates: job hash, queue list, wake-up list
-- ARGV[9..12] rate-limit templates: config hash, allowed set, rate_limited set; the rl-keys set
-- Returns the ids promoted onto their queues.

if redis.call("HGET", KEYS[1], "status") ~= "rate_limited" then
    return {}
end
local templates = {job = ARGV[6], queue = ARGV[7], wakeup = ARGV[8], rate_limit = ARGV[9],
    rate_limit_allowed = ARGV[10], rate_limit_waiting = ARGV[11], rate_limit_keys = ARGV[12]}
return wait_for_rate_limit(templates, KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
    math.floor(tonumber(ARGV[5])))
