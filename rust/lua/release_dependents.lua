-- Enqueues the deferred dependents of a parent job whose parents are now all met (see
-- release_dependents in the library).
--
-- KEYS[1] the parent's dependents set   KEYS[2] the queues set
-- ARGV[1..5] templates: job hash, dependencies set, queue list, deferred registry, wake-up list
-- ARGV[6] now, hash timestamp   ARGV[7] "1": the parent counts as met   ARGV[8] the parent's id
-- Returns the ids of the jobs it enqueued.

local templates = {job = ARGV[1], dependencies = ARGV[2], queue = ARGV[3], deferred = ARGV[4], wakeup = ARGV[5]}
return release_dependents(KEYS[1], KEYS[2], ARGV[8], ARGV[7] == "1", templates, ARGV[6])
