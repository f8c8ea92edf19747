-- Pushes a job id onto its queue, its head with ARGV[2] = "1", and wakes an idle worker: the
-- library's push_job, the one place the wake-up rule lives (`Queue.push_job_id`).
-- KEYS[1] queue list   KEYS[2] the queue's wake-up list
-- ARGV[1] job id   ARGV[2] "1" to push onto the head
push_job(KEYS[1], KEYS[2], ARGV[1], ARGV[2] == "1")
