//! The Python boundary: exposes the pure modules as `jobpool._native`.

use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;

use crate::{keys, scripts};

/// Every key template, as a dict of name to template.
#[pyfunction]
fn key_templates() -> Vec<(&'static str, &'static str)> {
    keys::TEMPLATES.to_vec()
}

/// Renders the key `name` under `prefix` with the placeholder values in `values`.
#[pyfunction]
fn render_key(name: &str, prefix: &str, values: Vec<(String, String)>) -> PyResult<String> {
    let pairs: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    keys::render(name, prefix, &pairs).map_err(|e| PyKeyError::new_err(e.to_string()))
}

/// Every Lua script, as (name, source) pairs.
#[pyfunction]
fn lua_scripts() -> Vec<(&'static str, &'static str)> {
    scripts::SCRIPTS.to_vec()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(key_templates, m)?)?;
    m.add_function(wrap_pyfunction!(render_key, m)?)?;
    m.add_function(wrap_pyfunction!(lua_scripts, m)?)?;
    Ok(())
}
