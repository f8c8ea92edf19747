//! The Lua scripts, embedded from `rust/lua/`. This is the one place they live: the Python
//! side gets their text from here (`jobpool._native.lua_scripts()`), so producer and worker
//! always run the same code.

/// (name, source) of every script.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("enqueue", include_str!("lua/enqueue.lua")),
    (
        "release_dependents",
        include_str!("lua/release_dependents.lua"),
    ),
    ("requeue", include_str!("lua/requeue.lua")),
    ("empty_queue", include_str!("lua/empty_queue.lua")),
];

/// The source of the script `name`, if there is one.
pub fn source(name: &str) -> Option<&'static str> {
    SCRIPTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_embedded_and_found_by_name() {
        for (name, text) in SCRIPTS {
            assert!(!text.trim().is_empty(), "{name} is empty");
            assert_eq!(source(name), Some(*text));
        }
        assert_eq!(source("no-such-script"), None);
    }
}
