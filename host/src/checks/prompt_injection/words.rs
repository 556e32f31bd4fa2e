//! A small list of frequent English words plus the vocabulary of prompt
//! injections, used to judge whether a cipher overlay "reads like language"
//! better than its input did. Sorted, lower case, two letters or more; the
//! list is ours (frequency lists are common knowledge), not a dictionary.

use std::sync::OnceLock;

/// True if `w` (lower-case ASCII) is in the list.
pub(super) fn is_common(w: &str) -> bool {
    static PACKED: OnceLock<Vec<u128>> = OnceLock::new();
    let table = PACKED.get_or_init(|| {
        let mut v: Vec<u128> = WORDS.iter().filter_map(|w| pack(w)).collect();
        v.sort_unstable();
        v
    });
    pack(w).is_some_and(|k| table.binary_search(&k).is_ok())
}

/// A word of up to 15 bytes as one integer (length in the top bits), so
/// lookups compare integers.
fn pack(w: &str) -> Option<u128> {
    if w.len() > 15 {
        return None;
    }
    let mut k: u128 = 0;
    for b in w.bytes() {
        k = k << 8 | u128::from(b);
    }
    Some(k | (w.len() as u128) << 124)
}

#[rustfmt::skip]
static WORDS: &[&str] = &[
    "able", "about", "above", "access", "account", "act", "acting", "activate", "activated",
    "add", "admin", "after", "again", "against", "all", "allow", "along", "already", "also",
    "always", "am", "an", "and", "another", "answer", "any", "anything", "appear", "are",
    "around", "as", "ask", "asked", "assistant", "at", "away", "back", "bad", "be", "because",
    "become", "been", "before", "begin", "being", "believe", "best", "better", "between",
    "big", "book", "both", "break", "bring", "broken", "build", "business", "but", "buy", "by",
    "bypass", "call", "can", "censorship", "change", "character", "chatbot", "chatgpt",
    "child", "children", "close", "code", "come", "commands", "company", "consider", "content",
    "context", "cost", "could", "create", "customer", "cut", "data", "day", "decide",
    "delivery", "developer", "did", "die", "different", "directions", "directives",
    "disregard", "do", "does", "doing", "done", "down", "during", "each", "earlier", "early",
    "email", "enable", "enabled", "end", "error", "ethical", "ethics", "even", "every",
    "everything", "expect", "eye", "fact", "fall", "family", "father", "feel", "few", "file",
    "files", "filter", "filters", "first", "fix", "follow", "following", "for", "forget",
    "forgetting", "forth", "free", "freed", "friend", "friends", "from", "full", "get", "give",
    "go", "god", "good", "great", "grow", "guideline", "guidelines", "had", "hand", "happen",
    "has", "have", "he", "hello", "help", "henceforth", "her", "here", "hi", "hidden", "high",
    "him", "his", "home", "house", "how", "however", "if", "ignore", "ignoring", "important",
    "in", "instruction", "instructions", "into", "is", "issue", "it", "its", "jailbreak",
    "jailbroken", "just", "keep", "key", "kill", "know", "large", "last", "lead", "learn",
    "leave", "let", "life", "like", "limitations", "limits", "line", "little", "live", "long",
    "look", "lose", "love", "made", "make", "man", "many", "may", "me", "men", "message",
    "messages", "might", "mode", "model", "money", "month", "moral", "morals", "more", "most",
    "mother", "move", "much", "must", "my", "name", "need", "never", "new", "next", "night",
    "no", "not", "note", "nothing", "now", "number", "of", "off", "offer", "often", "ok",
    "okay", "old", "on", "one", "only", "open", "openai", "or", "order", "other", "our", "out",
    "output", "over", "override", "own", "package", "part", "pass", "password", "pay",
    "payment", "people", "persona", "place", "please", "point", "policies", "policy",
    "preceding", "pretend", "pretending", "previous", "price", "print", "prior", "problem",
    "product", "prompt", "prompts", "provide", "public", "pull", "put", "question",
    "questions", "raise", "rather", "reach", "read", "real", "really", "refund", "remain",
    "remember", "reply", "report", "require", "respond", "restriction", "restrictions",
    "reveal", "right", "role", "roleplay", "room", "root", "rule", "rules", "run", "safety",
    "said", "same", "say", "says", "school", "secret", "see", "seem", "sell", "send", "sent",
    "serve", "service", "shall", "she", "shipping", "should", "show", "simply", "sit", "small",
    "so", "some", "something", "sorry", "speak", "spend", "stand", "stands", "start", "state",
    "stay", "still", "stop", "story", "such", "suggest", "support", "sure", "system", "take",
    "team", "tell", "test", "text", "than", "thank", "thanks", "that", "the", "their", "them",
    "then", "there", "these", "they", "thing", "things", "think", "this", "those", "through",
    "time", "times", "to", "today", "told", "tomorrow", "try", "turn", "two", "uncensored",
    "under", "understand", "unfiltered", "unrestricted", "up", "us", "use", "used", "using",
    "very", "wait", "want", "was", "watch", "water", "way", "we", "week", "well", "were",
    "what", "when", "where", "which", "while", "who", "why", "will", "with", "within",
    "without", "woman", "women", "word", "words", "work", "world", "would", "write", "year",
    "yes", "yesterday", "you", "young", "your",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_lowercase_unique() {
        for w in WORDS.windows(2) {
            if let [a, b] = w {
                assert!(a < b, "{a} {b}");
            }
        }
        assert!(WORDS
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
        assert!(is_common("ignore") && is_common("the") && !is_common("dan"));
    }
}
