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

/// (name, source) of every script.
pub const SCRIPTS: &[(&str, &str)] = &[
    script!("enqueue"),
    script!("release_dependents"),
    script!("requeue"),
    script!("empty_queue"),
    script!("take"),
    script!("start"),
    script!("reclaim"),
    script!("finish"),
    script!("fail"),
    script!("heartbeat"),
    script!("schedule"),
    script!("remove_executions"),
];

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
            assert_eq!(source(name), Some(*text));
        }
        assert_eq!(source("no-such-script"), None);
    }
}
