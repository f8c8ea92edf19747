-- Takes a canceled or deleted job out of its rate limit, as RQ's RateLimitRegistry.cancel does:
-- out of the waiting set, and its slot freed unless it still needs it (see release_stale_slot in
-- the library), filling the free slots then.
--
-- KEYS[1] the job's executions index
-- ARGV[1] job id   ARGV[2] the limit's name   ARGV[3] now, hash timestamp   ARGV[4] now, epoch seconds
-- ARGV[5..7] templates: job hash, queue list, wake-up list
-- ARGV[8..11] rate-limit templates: config hash, allowed set, rate_limited set; the rl-keys set
-- Returns the ids promoted onto their queues.

local templates = {job = ARGV[5], queue = ARGV[6], wakeup = ARGV[7], rate_limit = ARGV[8],
    rate_limit_allowed = ARGV[9], rate_limit_waiting = ARGV[10], rate_limit_keys = ARGV[11]}
redis.call("ZREM", fill(templates.rate_limit_waiting, ARGV[2]), ARGV[1])
return release_stale_slot(templates, ARGV[2], ARGV[1], KEYS[1], ARGV[3], math.floor(tonumber(ARGV[4])))
