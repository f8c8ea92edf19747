"""jobpool's Rust extension (hand-written stub, checked against the built module by mypy.stubtest)."""

__all__ = ["__version__", "key_templates", "lua_scripts", "render_key"]

__version__: str

def key_templates() -> list[tuple[str, str]]:
    """Every key template as (name, template); identical to ``jobpool.keys.TEMPLATES``."""

def render_key(name: str, prefix: str, values: list[tuple[str, str]]) -> str:
    """The key ``name`` under ``prefix``; raises KeyError for an unknown name or missing value."""

def lua_scripts() -> list[tuple[str, str]]:
    """Every Lua script as (name, source)."""
