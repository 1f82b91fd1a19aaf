//! Python bindings only; the transcoder lives in the sibling modules.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

mod aggregate;
mod dialect;
mod error;
mod event;
mod json;
mod ndjson;
mod outcome;
mod sse;
mod template;
mod text;
mod transcoder;
mod writer;

use crate::dialect::GenerationOptions;
use crate::error::UpstreamError;

/// Above this many input bytes a call releases the GIL: the work then costs far more than
/// releasing and re-taking it. Typical upstream reads are smaller and keep it.
const DETACH_FROM_BYTES: usize = 64 * 1024;

#[pyclass(module = "sluicegate._core", name = "StreamTranscoder")]
struct PyStreamTranscoder {
    inner: transcoder::StreamTranscoder,
}

#[pymethods]
impl PyStreamTranscoder {
    #[new]
    #[pyo3(signature = (
        dialect, model, *, response_id, created, stream = true, include_usage = false,
        logprobs = false, stop = Vec::new(), think = "auto", max_tokens = None,
        prompt_tokens = None, tools = None,
    ))]
    #[allow(clippy::too_many_arguments)] // the Python keyword arguments, one by one
    fn new(
        dialect: &str,
        model: &str,
        response_id: &str,
        created: i64,
        stream: bool,
        include_usage: bool,
        logprobs: bool,
        stop: Vec<String>,
        think: &str,
        max_tokens: Option<u64>,
        prompt_tokens: Option<u64>,
        tools: Option<&str>,
    ) -> PyResult<Self> {
        let options = generation_options(logprobs, stop, think, tools, max_tokens, prompt_tokens)?;
        transcoder::StreamTranscoder::new(
            dialect,
            model,
            response_id,
            created,
            stream,
            include_usage,
            options,
        )
        .map(|inner| PyStreamTranscoder { inner })
        .map_err(PyValueError::new_err)
    }

    fn feed<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> Bound<'py, PyBytes> {
        let inner = &mut self.inner;
        if chunk.len() >= DETACH_FROM_BYTES {
            let out = py.detach(|| inner.feed(chunk));
            PyBytes::new(py, out)
        } else {
            PyBytes::new(py, inner.feed(chunk))
        }
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.finish())
    }

    #[pyo3(signature = (message, r#type = "upstream_error", code = None))]
    fn abort<'py>(
        &mut self,
        py: Python<'py>,
        message: &str,
        r#type: &str,
        code: Option<&str>,
    ) -> Bound<'py, PyBytes> {
        PyBytes::new(
            py,
            self.inner.abort(UpstreamError::new(message, r#type, code)),
        )
    }

    #[getter]
    fn usage<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // orjson reads the counts and the cost exactly as Python's json would (it is read once
        // per request, and json.loads costs several times more); an integer past 64 bits, which
        // orjson refuses, falls back to Python's json.
        let Some(usage) = self.inner.usage() else {
            return Ok(None);
        };
        match py.import("orjson")?.call_method1("loads", (usage,)) {
            Ok(parsed) => Ok(Some(parsed)),
            Err(_) => Ok(Some(py.import("json")?.call_method1("loads", (usage,))?)),
        }
    }

    #[getter]
    fn finish_reason(&self) -> Option<&str> {
        self.inner.finish_reason()
    }

    #[getter]
    fn content_emitted(&self) -> bool {
        self.inner.content_emitted()
    }

    #[getter]
    fn error<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(error) = self.inner.error() else {
            return Ok(None);
        };
        let object = PyDict::new(py);
        object.set_item("message", &error.message)?;
        object.set_item("type", &error.kind)?;
        object.set_item("param", error.param.as_deref())?;
        object.set_item("code", error.code.as_deref())?;
        Ok(Some(object))
    }

    #[getter]
    fn done(&self) -> bool {
        self.inner.done()
    }
}

/// Turns a complete upstream answer (a JSON body or a whole stream) into one `chat.completion`
/// body or the error envelope.
#[pyfunction(name = "aggregate")]
#[pyo3(signature = (
    dialect, body, model, *, response_id, created, logprobs = false, stop = Vec::new(),
    think = "auto", max_tokens = None, prompt_tokens = None, tools = None,
))]
#[allow(clippy::too_many_arguments)] // the Python keyword arguments, one by one
fn aggregate_body<'py>(
    py: Python<'py>,
    dialect: &str,
    body: &[u8],
    model: &str,
    response_id: &str,
    created: i64,
    logprobs: bool,
    stop: Vec<String>,
    think: &str,
    max_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
    tools: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let options = generation_options(logprobs, stop, think, tools, max_tokens, prompt_tokens)?;
    let mut inner = transcoder::StreamTranscoder::new(
        dialect,
        model,
        response_id,
        created,
        false,
        false,
        options,
    )
    .map_err(PyValueError::new_err)?;
    inner.feed(body);
    Ok(PyBytes::new(py, inner.finish()))
}

/// The generation keyword arguments `StreamTranscoder` and `aggregate_body` share; a bad one is
/// a `ValueError` that says what to use instead.
fn generation_options(
    logprobs: bool,
    stop: Vec<String>,
    think: &str,
    tools: Option<&str>,
    max_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
) -> PyResult<GenerationOptions> {
    GenerationOptions::new(logprobs, stop, think, tools, max_tokens, prompt_tokens)
        .map_err(PyValueError::new_err)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStreamTranscoder>()?;
    m.add_function(wrap_pyfunction!(aggregate_body, m)?)?;
    m.add("DIALECTS", PyTuple::new(m.py(), dialect::DIALECT_NAMES)?)?;
    template::bindings::register(m)?;
    Ok(())
}
