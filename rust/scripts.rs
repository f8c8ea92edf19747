//! The Lua scripts, embedded from `rust/lua/`. This is the one place they live: the Python
//! side gets their text from here (`jobpool._native.lua_scripts()`), so producer and worker
//! always run the same code. Every script starts with the shared library `lua/lib/library.lua`.

macro_rules! script {
    ($name:literal) => {
        (
            $name,
            concat!(
                include_str!("lua/lib/library.lua"),
                include_str!(concat!("lua/", $name, ".lua"))
            ),
        )
    };
}

/// The text of script `$name` as a local function `<name>_part(KEYS, ARGV)` (its parameters
/// stand for the globals it reads), for `lua/step.lua`.
macro_rules! part {
    ($name:literal) => {
        concat!(
            "local function ",
            $name,
            "_part(KEYS, ARGV)\n",
            include_str!(concat!("lua/", $name, ".lua")),
            "\nend\n"
        )
    };
}

use crate::keys::KeySchema;

/// (name, source) of every script.
pub const SCRIPTS: &[(&str, &str)] = &[
    script!("enqueue"),
    script!("push"),
    script!("release_dependents"),
    script!("requeue"),
    script!("empty_queue"),
    script!("take"),
    script!("release"),
    script!("reclaim"),
    (
        "step",
        concat!(
            include_str!("lua/lib/library.lua"),
            part!("finish"),
            part!("fail"),
            part!("take"),
            include_str!("lua/step.lua")
        ),
    ),
    script!("heartbeat"),
    script!("schedule"),
    script!("remove_executions"),
    script!("cron_lock"),
    script!("rate_limit_acquire"),
    script!("rate_limit_release"),
    script!("rate_limit_cleanup"),
];

/// One call of a script, before it is sent: on its own (`Session::call`), or as a part of a
/// worker's step (`steps`). `finish` and `fail` are parts only: a record always goes through
/// `lua/step.lua`, which writes the workers' counters once its parts have run.
#[derive(Debug, Clone)]
pub struct ScriptCall {
    pub name: &'static str,
    pub keys: Vec<String>,
    pub args: Vec<Vec<u8>>,
}

/// The parts as one call of `lua/step.lua`, which runs them in order and returns each one's
/// reply: one script run for a step instead of one per part. The key templates the parts build
/// keys from go once, for all of them (`step_templates` in the library).
pub fn steps(keys: &KeySchema, parts: Vec<ScriptCall>) -> ScriptCall {
    let mut args: Vec<Vec<u8>> = Vec::with_capacity(11 + parts.len() * 3);
    args.push(parts.len().to_string().into_bytes());
    args.extend(keys.step_templates().map(String::into_bytes));
    args.extend(parts.iter().map(|part| part.name.as_bytes().to_vec()));
    args.extend(
        parts
            .iter()
            .map(|part| part.keys.len().to_string().into_bytes()),
    );
    args.extend(
        parts
            .iter()
            .map(|part| part.args.len().to_string().into_bytes()),
    );
    let mut keys = Vec::new();
    for part in parts {
        keys.extend(part.keys);
        args.extend(part.args);
    }
    ScriptCall {
        name: "step",
        keys,
        args,
    }
}

/// The source of the script `name`, if there is one.
pub fn source(name: &str) -> Option<&'static str> {
    SCRIPTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_embedded_with_the_library_and_found_by_name() {
        for (name, text) in SCRIPTS {
            assert!(text.contains("local function release_dependents"), "{name}");
            assert_eq!(
                text.matches("local function release_dependents").count(),
                1,
                "{name}: the library once"
            );
            assert_eq!(source(name), Some(*text));
        }
        assert_eq!(source("no-such-script"), None);
    }
}
