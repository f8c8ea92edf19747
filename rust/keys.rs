//! The Redis key schema: every key name jobpool and RQ share, in one table.
//!
//! `python/jobpool/keys.py` holds the same table; `tests/test_keys.py` checks that the two
//! are identical, so a key is renamed in both languages or in neither. A template is literal
//! text with `{placeholder}` holes; `{prefix}` is the deployment's key prefix (`RQ_KEY_PREFIX`,
//! default `rq`, which may itself hold braces, e.g. the hash tag `{rq}`).

/// (name, template) for every key.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("job", "{prefix}:job:{job_id}"),
    ("job_dependents", "{prefix}:job:{job_id}:dependents"),
    // RQ builds this one as prefix + ':' + id: the double colon is part of the data layout.
    ("job_dependencies", "{prefix}:job::{job_id}:dependencies"),
    ("results", "{prefix}:results:{job_id}"),
    ("execution", "{prefix}:execution:{job_id}:{execution_id}"),
    ("executions", "{prefix}:executions:{job_id}"),
    ("queue", "{prefix}:queue:{queue}"),
    ("queues", "{prefix}:queues"),
    ("started", "{prefix}:wip:{queue}"),
    ("finished", "{prefix}:finished:{queue}"),
    ("failed", "{prefix}:failed:{queue}"),
    ("deferred", "{prefix}:deferred:{queue}"),
    ("ready", "{prefix}:ready:{queue}"),
    ("scheduled", "{prefix}:scheduled:{queue}"),
    ("canceled", "{prefix}:canceled:{queue}"),
    ("worker", "{prefix}:worker:{worker}"),
    ("worker_executions", "{prefix}:worker:{worker}:executions"),
    ("workers", "{prefix}:workers"),
    ("queue_workers", "{prefix}:workers:{queue}"),
    ("worker_commands", "{prefix}:pubsub:{worker}"),
    ("suspended", "{prefix}:suspended"),
    ("scheduler_lock", "{prefix}:scheduler-lock:{queue}"),
    ("scheduler", "{prefix}:scheduler:{scheduler}"),
    ("group", "{prefix}:group:{group}"),
    ("groups", "{prefix}:groups"),
    ("clean_groups", "{prefix}:clean_groups"),
    // RQ 3.0's rate limits (rq/rate_limit.py): a limit's config hash (its concurrency), the jobs
    // holding its slots, the jobs waiting for one, and the set of every limit's name.
    ("rate_limit", "{prefix}:rl:{rate_limit}"),
    ("rate_limit_allowed", "{prefix}:rl:{rate_limit}:allowed"),
    (
        "rate_limit_waiting",
        "{prefix}:rl:{rate_limit}:rate_limited",
    ),
    ("rate_limit_keys", "{prefix}:rl-keys"),
    // jobpool's own: a short list an idle worker blocks on; every push of a job id onto the queue
    // also pushes a marker here (see `push_job` in lua/lib/library.lua). RQ never reads it.
    ("wakeup", "{prefix}:jobpool:wakeup:{queue}"),
    // jobpool's own: held by the pool whose supervisor recovers a queue's abandoned jobs.
    (
        "maintenance_lock",
        "{prefix}:jobpool:maintenance-lock:{queue}",
    ),
    // jobpool's own: left by a supervisor that took back a worker's take ahead before Redis ran
    // it, so that the take takes nothing (see lua/reclaim.lua). Short-lived, and rare.
    ("reclaimed", "{prefix}:jobpool:reclaimed:{execution_id}"),
    // RQ's cron data: a cron job's history of the jobs it enqueued, the names of the cron jobs
    // that enqueued lately, and the cron schedulers (a registry by heartbeat, and one hash each).
    ("cron_job_history", "{prefix}:cron_job:{cron_job}:jobs"),
    ("cron_jobs", "{prefix}:cron_jobs"),
    ("cron_schedulers", "{prefix}:cron_schedulers"),
    ("cron_scheduler", "{prefix}:cron_scheduler:{scheduler}"),
    // jobpool's own: held (a few seconds, refreshed) by the one cron scheduler that enqueues the
    // cron jobs of a configuration, whichever pools or hosts run it (see cron_claims.py).
    ("cron_lock", "{prefix}:jobpool:cron-lock:{cron_config}"),
    // jobpool's own: a cron job's last enqueued tick (epoch seconds), advanced in the transaction
    // that enqueues the tick's job, so that each tick is enqueued once.
    ("cron_tick", "{prefix}:jobpool:cron-tick:{cron_job}"),
];

/// A key template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    UnknownTemplate(String),
    MissingPlaceholder {
        template: String,
        placeholder: String,
    },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::UnknownTemplate(name) => write!(f, "no key template named {name:?}"),
            KeyError::MissingPlaceholder {
                template,
                placeholder,
            } => write!(
                f,
                "key template {template:?} needs a value for {{{placeholder}}}"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// The template registered under `name`.
pub fn template(name: &str) -> Result<&'static str, KeyError> {
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| KeyError::UnknownTemplate(name.to_owned()))
}

/// Renders the key `name` under `prefix`, taking each other placeholder's value from `values`.
///
/// Values are substituted once, left to right, so braces inside the prefix or a value are
/// copied literally and never read as placeholders.
pub fn render(name: &str, prefix: &str, values: &[(&str, &str)]) -> Result<String, KeyError> {
    let template = template(name)?;
    let mut key = String::with_capacity(template.len() + 48);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        key.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').unwrap_or(after.len());
        let placeholder = &after[..close];
        let value = if placeholder == "prefix" {
            Some(prefix)
        } else {
            values
                .iter()
                .find(|(k, _)| *k == placeholder)
                .map(|(_, v)| *v)
        };
        match value {
            Some(v) => key.push_str(v),
            None => {
                return Err(KeyError::MissingPlaceholder {
                    template: name.to_owned(),
                    placeholder: placeholder.to_owned(),
                })
            }
        }
        rest = after.get(close + 1..).unwrap_or("");
    }
    key.push_str(rest);
    Ok(key)
}

/// Where a script takes a job id or queue name into a template (see `lua/lib/library.lua`).
pub const ID_MARK: &str = "\0";

/// The keys of one deployment (one prefix).
#[derive(Debug, Clone)]
pub struct KeySchema {
    prefix: String,
}

impl KeySchema {
    pub fn new(prefix: impl Into<String>) -> KeySchema {
        KeySchema {
            prefix: prefix.into(),
        }
    }

    /// The key `name`; every template used below exists and gets all its values, so rendering
    /// cannot fail, and a mistake here is caught by the tests of this module.
    fn key(&self, name: &str, values: &[(&str, &str)]) -> String {
        render(name, &self.prefix, values).unwrap_or_else(|error| format!("<{error}>"))
    }

    pub fn job(&self, job_id: &str) -> String {
        self.key("job", &[("job_id", job_id)])
    }
    pub fn job_dependents(&self, job_id: &str) -> String {
        self.key("job_dependents", &[("job_id", job_id)])
    }
    pub fn job_dependencies(&self, job_id: &str) -> String {
        self.key("job_dependencies", &[("job_id", job_id)])
    }
    pub fn results(&self, job_id: &str) -> String {
        self.key("results", &[("job_id", job_id)])
    }
    pub fn execution(&self, job_id: &str, execution_id: &str) -> String {
        self.key(
            "execution",
            &[("job_id", job_id), ("execution_id", execution_id)],
        )
    }
    pub fn executions(&self, job_id: &str) -> String {
        self.key("executions", &[("job_id", job_id)])
    }
    pub fn queue(&self, queue: &str) -> String {
        self.key("queue", &[("queue", queue)])
    }
    pub fn queues(&self) -> String {
        self.key("queues", &[])
    }
    pub fn suspended(&self) -> String {
        self.key("suspended", &[])
    }
    /// A per-queue registry: started, finished, failed, deferred, scheduled, canceled, ready.
    pub fn registry(&self, kind: &str, queue: &str) -> String {
        self.key(kind, &[("queue", queue)])
    }
    pub fn wakeup(&self, queue: &str) -> String {
        self.key("wakeup", &[("queue", queue)])
    }
    pub fn worker(&self, worker: &str) -> String {
        self.key("worker", &[("worker", worker)])
    }
    pub fn worker_executions(&self, worker: &str) -> String {
        self.key("worker_executions", &[("worker", worker)])
    }
    pub fn reclaimed(&self, execution_id: &str) -> String {
        self.key("reclaimed", &[("execution_id", execution_id)])
    }
    pub fn workers(&self) -> String {
        self.key("workers", &[])
    }
    pub fn queue_workers(&self, queue: &str) -> String {
        self.key("queue_workers", &[("queue", queue)])
    }

    /// The rate-limit templates the ending scripts take (see `lua/lib/library.lua`): config
    /// hash, allowed set, rate_limited set, and the rl-keys set itself.
    pub fn rate_limit_templates(&self) -> [String; 4] {
        [
            self.key("rate_limit", &[("rate_limit", ID_MARK)]),
            self.key("rate_limit_allowed", &[("rate_limit", ID_MARK)]),
            self.key("rate_limit_waiting", &[("rate_limit", ID_MARK)]),
            self.key("rate_limit_keys", &[]),
        ]
    }

    /// The templates a worker's step gives its parts, in `lua/step.lua`'s order: those of
    /// `release_dependents`, the scheduled registry, then those of a rate limit.
    pub fn step_templates(&self) -> [String; 10] {
        let [job, dependencies, queue, deferred, wakeup] = self.dependents_templates();
        let [limit, allowed, waiting, limits] = self.rate_limit_templates();
        [
            job,
            dependencies,
            queue,
            deferred,
            wakeup,
            self.registry("scheduled", ID_MARK),
            limit,
            allowed,
            waiting,
            limits,
        ]
    }

    /// The templates the library's `release_dependents` takes: job hash, dependencies set,
    /// queue list, deferred registry, wake-up list.
    pub fn dependents_templates(&self) -> [String; 5] {
        [
            self.job(ID_MARK),
            self.job_dependencies(ID_MARK),
            self.queue(ID_MARK),
            self.registry("deferred", ID_MARK),
            self.wakeup(ID_MARK),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rq_layout() {
        let rendered = |name, values: &[(&str, &str)]| render(name, "rq", values);
        assert_eq!(rendered("job", &[("job_id", "a1")]), Ok("rq:job:a1".into()));
        assert_eq!(
            rendered("job_dependencies", &[("job_id", "a1")]),
            Ok("rq:job::a1:dependencies".into())
        );
        assert_eq!(
            rendered("started", &[("queue", "q")]),
            Ok("rq:wip:q".into())
        );
        assert_eq!(rendered("queues", &[]), Ok("rq:queues".into()));
    }

    #[test]
    fn braces_in_prefix_and_values_are_literal() {
        assert_eq!(
            render("queue", "{rq}", &[("queue", "{job_id}")]),
            Ok("{rq}:queue:{job_id}".into())
        );
    }

    #[test]
    fn missing_value_and_unknown_name_are_errors() {
        assert_eq!(
            render("job", "rq", &[]),
            Err(KeyError::MissingPlaceholder {
                template: "job".into(),
                placeholder: "job_id".into()
            })
        );
        assert!(matches!(
            render("nope", "rq", &[]),
            Err(KeyError::UnknownTemplate(_))
        ));
    }

    #[test]
    fn schema_renders_every_key_it_offers() {
        let keys = KeySchema::new("rq");
        let all = [
            keys.job("j"),
            keys.job_dependents("j"),
            keys.job_dependencies("j"),
            keys.results("j"),
            keys.execution("j", "e"),
            keys.executions("j"),
            keys.queue("q"),
            keys.queues(),
            keys.registry("started", "q"),
            keys.registry("finished", "q"),
            keys.registry("failed", "q"),
            keys.registry("deferred", "q"),
            keys.registry("scheduled", "q"),
            keys.wakeup("q"),
            keys.worker("w"),
            keys.worker_executions("w"),
            keys.workers(),
            keys.queue_workers("q"),
        ];
        assert!(all.iter().all(|key| key.starts_with("rq:")), "{all:?}");
        assert_eq!(keys.execution("j", "e"), "rq:execution:j:e");
        assert_eq!(keys.queue_workers("q"), "rq:workers:q");
        assert_eq!(keys.dependents_templates()[0], "rq:job:\0");
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = TEMPLATES.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TEMPLATES.len());
    }
}
