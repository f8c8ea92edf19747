-- Enqueues the deferred dependents of a parent job whose parents are now all met (see
-- release_dependents in the library).
--
-- KEYS[1] the parent's dependents set   KEYS[2] the queues set
-- ARGV[1..5] templates: job hash, dependencies set, queue list, deferred registry, wake-up list
-- ARGV[6] now, hash timestamp   ARGV[7] "1": the parent counts as met   ARGV[8] the parent's id
-- ARGV[9..12] rate-limit templates: config hash, allowed set, rate_limited set; the rl-keys set
-- ARGV[13] now, epoch seconds
-- Returns the ids of the jobs it enqueued (a dependent with a rate limit may wait for a slot).

local templates = {job = ARGV[1], dependencies = ARGV[2], queue = ARGV[3], deferred = ARGV[4],
    wakeup = ARGV[5], rate_limit = ARGV[9], rate_limit_allowed = ARGV[10], rate_limit_waiting = ARGV[11],
    rate_limit_keys = ARGV[12]}
return release_dependents(KEYS[1], KEYS[2], ARGV[8], ARGV[7] == "1", templates, ARGV[6], ARGV[13])
