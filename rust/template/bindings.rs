//! The Python face of chat templates: `sluicegate._core.ChatTemplate` and `BUILTIN_FAMILIES`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{ChatTemplate, TemplateError, FAMILY_NAMES};

/// Above this many bytes of conversation a render releases the GIL: only long agent transcripts
/// cost more to render than releasing and re-taking it.
const DETACH_FROM_BYTES: usize = 64 * 1024;

fn value_error(err: TemplateError) -> PyErr {
    PyValueError::new_err(err.0)
}

/// Immutable, so one instance can serve every request for its model.
#[pyclass(module = "sluicegate._core", name = "ChatTemplate", frozen)]
pub struct PyChatTemplate {
    inner: ChatTemplate,
}

#[pymethods]
impl PyChatTemplate {
    #[new]
    #[pyo3(signature = (source, *, bos_token = "", eos_token = "", stop = Vec::new(), name = "custom"))]
    fn new(
        source: &str,
        bos_token: &str,
        eos_token: &str,
        stop: Vec<String>,
        name: &str,
    ) -> PyResult<Self> {
        ChatTemplate::new(name, source, bos_token, eos_token, &stop)
            .map(|inner| PyChatTemplate { inner })
            .map_err(value_error)
    }

    #[staticmethod]
    #[pyo3(signature = (family, *, bos_token = None, eos_token = None, stop = Vec::new()))]
    fn builtin(
        family: &str,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
        stop: Vec<String>,
    ) -> PyResult<Self> {
        ChatTemplate::builtin(family)
            .and_then(|template| template.with_overrides(bos_token, eos_token, &stop))
            .map(|inner| PyChatTemplate { inner })
            .map_err(value_error)
    }

    #[staticmethod]
    fn for_model(model_id: &str) -> Option<Self> {
        ChatTemplate::for_model(model_id).map(|template| PyChatTemplate {
            inner: template.clone(),
        })
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    #[getter]
    fn stop(&self) -> Vec<String> {
        self.inner.stop().to_vec()
    }

    #[getter]
    fn bos_token(&self) -> &str {
        self.inner.bos_token()
    }

    #[getter]
    fn eos_token(&self) -> &str {
        self.inner.eos_token()
    }

    #[pyo3(signature = (messages_json, *, add_generation_prompt = true, tools_json = None, extra_json = None))]
    fn render(
        &self,
        py: Python<'_>,
        messages_json: &[u8],
        add_generation_prompt: bool,
        tools_json: Option<&[u8]>,
        extra_json: Option<&[u8]>,
    ) -> PyResult<String> {
        let inner = &self.inner;
        let render = || inner.render(messages_json, add_generation_prompt, tools_json, extra_json);
        let rendered = if messages_json.len() >= DETACH_FROM_BYTES {
            py.detach(render)
        } else {
            render()
        };
        rendered.map_err(value_error)
    }

    fn __repr__(&self) -> String {
        format!(
            "ChatTemplate(name={:?}, stop={:?})",
            self.inner.name(),
            self.inner.stop()
        )
    }
}

/// Adds the class and `BUILTIN_FAMILIES` to the extension module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyChatTemplate>()?;
    module.add("BUILTIN_FAMILIES", PyTuple::new(module.py(), FAMILY_NAMES)?)?;
    Ok(())
}
