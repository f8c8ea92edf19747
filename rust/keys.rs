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
    fn names_are_unique() {
        let mut names: Vec<_> = TEMPLATES.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TEMPLATES.len());
    }
}
