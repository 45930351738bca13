//! One type over every engine collector, so the agent holds a list of them.

use std::time::Duration;

use infermon_model::raw::{EngineKind, EngineRaw};

use crate::{llamacpp, llamaswap, lmstudio, ollama, sglang, vllm};

/// A collector for one engine of any kind.
#[derive(Debug)]
pub enum EngineClient {
    /// llama.cpp `llama-server`.
    Llamacpp(llamacpp::LlamaCpp),
    /// vLLM.
    Vllm(vllm::Vllm),
    /// SGLang.
    Sglang(sglang::Sglang),
    /// Ollama.
    Ollama(ollama::Ollama),
    /// LM Studio.
    LmStudio(lmstudio::LmStudio),
    /// llama-swap.
    LlamaSwap(llamaswap::LlamaSwap),
}

impl EngineClient {
    /// A collector of `kind` for the engine at `base`; `pid` is the server process when known
    /// (llama-server only); every request is bounded by `timeout`.
    pub fn new(
        kind: EngineKind,
        base: &str,
        origin: &str,
        pid: Option<u32>,
        timeout: Duration,
    ) -> Self {
        match kind {
            EngineKind::Llamacpp => {
                EngineClient::Llamacpp(llamacpp::LlamaCpp::new(base, origin, pid, timeout))
            }
            EngineKind::Vllm => EngineClient::Vllm(vllm::Vllm::new(base, origin, timeout)),
            EngineKind::Sglang => EngineClient::Sglang(sglang::Sglang::new(base, origin, timeout)),
            EngineKind::Ollama => EngineClient::Ollama(ollama::Ollama::new(base, origin, timeout)),
            EngineKind::LmStudio => {
                EngineClient::LmStudio(lmstudio::LmStudio::new(base, origin, timeout))
            }
            EngineKind::LlamaSwap => {
                EngineClient::LlamaSwap(llamaswap::LlamaSwap::new(base, origin, timeout))
            }
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        match self {
            EngineClient::Llamacpp(c) => c.base(),
            EngineClient::Vllm(c) => c.base(),
            EngineClient::Sglang(c) => c.base(),
            EngineClient::Ollama(c) => c.base(),
            EngineClient::LmStudio(c) => c.base(),
            EngineClient::LlamaSwap(c) => c.base(),
        }
    }

    /// Reads every endpoint of the engine once.
    pub async fn read(&self) -> EngineRaw {
        match self {
            EngineClient::Llamacpp(c) => c.read().await,
            EngineClient::Vllm(c) => c.read().await,
            EngineClient::Sglang(c) => c.read().await,
            EngineClient::Ollama(c) => c.read().await,
            EngineClient::LmStudio(c) => c.read().await,
            EngineClient::LlamaSwap(c) => c.read().await,
        }
    }
}
