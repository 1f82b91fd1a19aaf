//! The built-in template families: each model family's published template (see
//! `builtin/SOURCES.md`), its special tokens, its end-of-turn strings, and the model ids it serves.

/// One built-in family.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub source: &'static str,
    pub bos_token: &'static str,
    pub eos_token: &'static str,
    /// Strings the model writes when its turn ends; generation must stop at them.
    pub stop: &'static [&'static str],
    /// Lower-case fragments of a model id that select this family.
    patterns: &'static [&'static str],
}

/// In the order `for_model` tries them: more specific families first, because names nest
/// ("DeepSeek-R1-Distill-Llama", "Hermes-3-Llama-3.1", "Qwen3" vs "Qwen2").
pub const FAMILIES: &[Family] = &[
    // Before `deepseek`, whose "deepseek-v3" and "deepseek-chat" would take V3.1's ids too.
    // V3.1 writes calls as `NAME<｜tool▁sep｜>{json}` and has a thinking switch; V3 (Dec 2024),
    // V3-0324 and R1 publish the older format. V3.2 publishes no Jinja template at all.
    Family {
        name: "deepseek_v3",
        source: include_str!("builtin/deepseek_v3.jinja"),
        bos_token: "<｜begin▁of▁sentence｜>",
        eos_token: "<｜end▁of▁sentence｜>",
        stop: &["<｜end▁of▁sentence｜>"],
        patterns: &["deepseek-v3.1", "deepseek-chat-v3.1"],
    },
    Family {
        name: "deepseek",
        source: include_str!("builtin/deepseek.jinja"),
        bos_token: "<｜begin▁of▁sentence｜>",
        eos_token: "<｜end▁of▁sentence｜>",
        stop: &["<｜end▁of▁sentence｜>"],
        patterns: &["deepseek-v3", "deepseek-r1", "deepseek-chat"],
    },
    Family {
        name: "qwen3",
        source: include_str!("builtin/qwen3.jinja"),
        bos_token: "",
        eos_token: "<|im_end|>",
        stop: &["<|im_end|>"],
        patterns: &["qwen3"],
    },
    Family {
        name: "chatml",
        source: include_str!("builtin/chatml.jinja"),
        bos_token: "",
        eos_token: "<|im_end|>",
        stop: &["<|im_end|>"],
        // Hermes and Dolphin fine-tunes of Llama speak ChatML, not Llama's format.
        patterns: &["qwen2", "qwq", "hermes", "dolphin"],
    },
    Family {
        name: "llama3",
        source: include_str!("builtin/llama3.jinja"),
        bos_token: "<|begin_of_text|>",
        eos_token: "<|eot_id|>",
        stop: &["<|eot_id|>", "<|eom_id|>"],
        patterns: &["llama-3", "llama3"],
    },
    // Mistral's tool-calling models, before `mistral` whose wildcard would take their ids too.
    // Both templates write the same control tokens ([AVAILABLE_TOOLS], [TOOL_CALLS],
    // [TOOL_RESULTS]); they differ in the spaces around them, which follow the tokenizer the
    // model was trained with (v3 "sentencepiece": "[INST] Hi[/INST]"; v3 "tekken":
    // "[INST]Hi[/INST]"), so the two must not share a template.
    Family {
        name: "mistral_tools",
        source: include_str!("builtin/mistral_tools.jinja"),
        bos_token: "<s>",
        eos_token: "</s>",
        stop: &["</s>"],
        // Mistral Large 2407 publishes this very template text (llama.cpp tests it as the
        // "v3" template); Mixtral 8x22B and Mistral Small 2409 use the same v3 tokenizer.
        patterns: &[
            "mistral-7b-instruct-v0.3",
            "mixtral-8x22b-instruct",
            "mistral-small-instruct-2409",
            "mistral-small-2409",
            "mistral-large-instruct-2407",
            "mistral-large-2407",
        ],
    },
    Family {
        name: "mistral_nemo",
        source: include_str!("builtin/mistral_nemo.jinja"),
        bos_token: "<s>",
        eos_token: "</s>",
        stop: &["</s>"],
        patterns: &["mistral-nemo"],
    },
    Family {
        name: "mistral",
        source: include_str!("builtin/mistral.jinja"),
        bos_token: "<s>",
        eos_token: "</s>",
        stop: &["</s>"],
        patterns: &["mixtral", "mistral-*instruct"],
    },
    Family {
        name: "gemma3",
        source: include_str!("builtin/gemma3.jinja"),
        bos_token: "<bos>",
        eos_token: "<eos>",
        stop: &["<end_of_turn>"],
        // Gemma 3 folds a system message into the first user turn; Gemma 2's template refuses
        // one, so the two must not share a family ("gemma-3n" ids land here too).
        patterns: &["gemma-3", "gemma3"],
    },
    Family {
        name: "gemma",
        source: include_str!("builtin/gemma.jinja"),
        bos_token: "<bos>",
        eos_token: "<eos>",
        stop: &["<end_of_turn>"],
        patterns: &["gemma-2", "gemma2"],
    },
    Family {
        name: "glm4",
        source: include_str!("builtin/glm4.jinja"),
        bos_token: "",
        eos_token: "<|endoftext|>",
        stop: &["<|user|>", "<|observation|>", "<|endoftext|>"],
        patterns: &["glm-4", "glm4"],
    },
];

/// The family names, in a stable order for error messages and `BUILTIN_FAMILIES`.
pub const FAMILY_NAMES: [&str; 11] = [
    "llama3",
    "chatml",
    "qwen3",
    "deepseek",
    "deepseek_v3",
    "mistral",
    "mistral_tools",
    "mistral_nemo",
    "gemma",
    "gemma3",
    "glm4",
];

/// The family whose pattern occurs in `model_id` (case-insensitive), if any.
pub fn for_model(model_id: &str) -> Option<&'static Family> {
    let id = model_id.to_lowercase();
    FAMILIES.iter().find(|family| {
        family
            .patterns
            .iter()
            .any(|pattern| matches_pattern(&id, pattern))
    })
}

/// `pattern` occurs in `id`; a `*` in it stands for any run of characters
/// ("mistral-*instruct" matches "mistral-7b-instruct-v0.3" and "mistral-small-24b-instruct").
fn matches_pattern(id: &str, pattern: &str) -> bool {
    let mut rest = id;
    for piece in pattern.split('*') {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(model_id: &str) -> Option<&'static str> {
        for_model(model_id).map(|family| family.name)
    }

    #[test]
    fn names_list_every_family_once() {
        assert_eq!(FAMILY_NAMES.len(), FAMILIES.len());
        for name in FAMILY_NAMES {
            let found = FAMILIES.iter().filter(|family| family.name == name).count();
            assert_eq!(found, 1, "{name}");
        }
    }

    #[test]
    fn real_model_ids_pick_their_family() {
        let cases = [
            ("meta-llama/Meta-Llama-3.1-8B-Instruct", "llama3"),
            ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "llama3"),
            ("Qwen/Qwen2.5-72B-Instruct", "chatml"),
            ("NousResearch/Hermes-3-Llama-3.1-405B", "chatml"),
            ("Qwen/Qwen3-235B-A22B", "qwen3"),
            ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "deepseek"),
            ("deepseek-ai/DeepSeek-V3", "deepseek"),
            ("deepseek-ai/DeepSeek-V3-0324", "deepseek"),
            ("deepseek-ai/DeepSeek-V3.1", "deepseek_v3"),
            ("deepseek-ai/DeepSeek-V3.1-Terminus", "deepseek_v3"),
            ("deepseek-v3.1:671b", "deepseek_v3"),
            ("deepseek/deepseek-chat-v3.1", "deepseek_v3"),
            ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistral"),
            ("mistralai/Mistral-7B-Instruct-v0.2", "mistral"),
            ("mistralai/Mistral-7B-Instruct-v0.3", "mistral_tools"),
            ("mistralai/Mixtral-8x22B-Instruct-v0.1", "mistral_tools"),
            ("mistralai/Mistral-Small-Instruct-2409", "mistral_tools"),
            ("mistralai/Mistral-Large-Instruct-2407", "mistral_tools"),
            ("mistralai/Mistral-Nemo-Instruct-2407", "mistral_nemo"),
            ("mistral-nemo:12b", "mistral_nemo"),
            ("google/gemma-2-9b-it", "gemma"),
            ("google/gemma-3-27b-it", "gemma3"),
            ("unsloth/gemma3-4b-it", "gemma3"),
            ("THUDM/glm-4-9b-chat", "glm4"),
        ];
        for (model_id, expected) in cases {
            assert_eq!(family(model_id), Some(expected), "{model_id}");
        }
    }

    #[test]
    fn unknown_ids_pick_nothing() {
        for model_id in ["gpt-4o", "mistralai/Mistral-7B-v0.1", "microsoft/phi-4", ""] {
            assert_eq!(family(model_id), None, "{model_id}");
        }
    }

    #[test]
    fn wildcard_patterns() {
        assert!(matches_pattern(
            "mistral-small-instruct",
            "mistral-*instruct"
        ));
        assert!(matches_pattern("xmistral-instruct", "mistral-*instruct"));
        assert!(!matches_pattern("instruct-mistral-", "mistral-*instruct"));
        assert!(matches_pattern("anything", ""));
    }
}
