//! A small list of frequent English words plus the vocabulary of prompt
//! injections, used to judge whether a cipher overlay "reads like language"
//! better than its input did. Sorted, lower case, two letters or more; the
//! list is ours (frequency lists are common knowledge), not a dictionary.

use std::sync::OnceLock;

/// True if `w` (lower-case ASCII) is in the list. Most tokens a cipher overlay produces are
/// gibberish, so a table of the lists' two-letter prefixes turns nearly all of
/// them away before the binary search.
pub(super) fn is_common(w: &[u8]) -> bool {
    struct Table {
        packed: Vec<u128>,
        /// Bit `b` of `prefixes[a]`: some word starts with letters a, b.
        prefixes: [u32; 26],
    }
    static TABLE: OnceLock<Table> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut packed: Vec<u128> = WORDS.iter().filter_map(|w| pack(w.as_bytes())).collect();
        packed.sort_unstable();
        let mut prefixes = [0u32; 26];
        for w in WORDS {
            if let [a @ b'a'..=b'z', b @ b'a'..=b'z', ..] = w.as_bytes() {
                if let Some(slot) = prefixes.get_mut(usize::from(a - b'a')) {
                    *slot |= 1 << (b - b'a');
                }
            }
        }
        Table { packed, prefixes }
    });
    let [a @ b'a'..=b'z', b @ b'a'..=b'z', ..] = w else {
        return false;
    };
    let known = t
        .prefixes
        .get(usize::from(a - b'a'))
        .is_some_and(|bits| bits & (1 << (b - b'a')) != 0);
    known && pack(w).is_some_and(|k| t.packed.binary_search(&k).is_ok())
}

/// Call `each(k)` for every Caesar shift k (0..26) that turns the lower-case
/// ASCII token `w` into a listed word. Two words are shifts of each other
/// exactly when they have the same length and the same letter-to-letter steps
/// (mod 26), so one lookup of that signature finds every k at once: the
/// cipher decoder tallies all 25 shifts of a passage in a single pass instead
/// of ranking them and re-reading it per shift.
pub(super) fn shifts_to_common(w: &[u8], mut each: impl FnMut(u8)) {
    static TABLE: OnceLock<Vec<(u128, u8)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut v: Vec<(u128, u8)> = WORDS
            .iter()
            .filter_map(|w| Some((signature(w.as_bytes())?, *w.as_bytes().first()?)))
            .collect();
        v.sort_unstable();
        v
    });
    let (Some(sig), Some(&first)) = (signature(w), w.first()) else {
        return;
    };
    let from = table.partition_point(|e| e.0 < sig);
    for &(_, word_first) in table.iter().skip(from).take_while(|e| e.0 == sig) {
        each((word_first + 26 - first) % 26);
    }
}

/// Length and letter-to-letter steps of a lower-case word of 2 to 15 letters.
fn signature(w: &[u8]) -> Option<u128> {
    if !(2..=15).contains(&w.len()) || !w.iter().all(u8::is_ascii_lowercase) {
        return None;
    }
    let mut k: u128 = 0;
    for pair in w.windows(2) {
        if let [a, b] = pair {
            k = k << 5 | u128::from((b + 26 - a) % 26);
        }
    }
    Some(k | (w.len() as u128) << 120)
}

/// A word of up to 15 bytes as one integer (length in the top bits), so
/// lookups compare integers.
fn pack(w: &[u8]) -> Option<u128> {
    if w.len() > 15 {
        return None;
    }
    let mut k: u128 = 0;
    for &b in w {
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
        assert!(is_common(b"ignore") && is_common(b"the") && !is_common(b"dan"));
        // Every listed word passes the prefix table; near misses do not.
        assert!(WORDS.iter().all(|w| is_common(w.as_bytes())));
        for w in ["", "a", "ig", "ignor", "ignorex", "Ignore", "zz", "the "] {
            assert!(!is_common(w.as_bytes()), "{w:?}");
        }
    }

    #[test]
    fn shifts_are_found_from_the_signature() {
        let shifts = |w: &str| {
            let mut v = Vec::new();
            shifts_to_common(w.as_bytes(), |k| v.push(k));
            v.sort_unstable();
            v
        };
        // "vtaber" is ROT13 of "ignore"; "the" is itself listed.
        assert_eq!(shifts("vtaber"), [13]);
        assert!(shifts("the").contains(&0));
        // Every listed word, shifted by every k, is found with the shift back.
        for w in WORDS {
            for k in 1..26u8 {
                let enc: Vec<u8> = w.bytes().map(|b| b'a' + (b - b'a' + k) % 26).collect();
                let mut back = Vec::new();
                shifts_to_common(&enc, |j| back.push(j));
                assert!(back.contains(&(26 - k)), "{w} rot{k}");
            }
        }
        assert!(shifts("").is_empty() && shifts("x").is_empty() && shifts("ab-c").is_empty());
    }
}
