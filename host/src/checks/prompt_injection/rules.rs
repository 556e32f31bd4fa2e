//! The built-in rules: one regex per attack shape, each `High` (so with the
//! default `severity_actions` any of them blocks, whatever channel it matched
//! in). Patterns are written for precision: each needs a whole phrase that
//! addresses the model ("ignore all previous instructions", "you are now
//! DAN", "ChatGPT with Developer Mode enabled"), never a single word, so
//! "tell her", "Dan is my friend", "enable developer mode in Chrome" and
//! "ignore the noise in the data" pass. `\b` is compiled as an ASCII word
//! boundary; matching is case-insensitive unless a group says `(?-i:…)`.
//!
//! `Squashed` rules run on the letters-only view (no spaces, no
//! punctuation) and exist only for long phrases that cannot occur by
//! accident across word boundaries. The invisible-character rules are
//! implemented in `hidden.rs`; their names are listed here.

use super::report::Severity;

/// Which view of a text a rule is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ViewKind {
    /// The text as it is (raw or decoded) and its normalized view.
    Phrase,
    /// The letters-only view.
    Squashed,
}

/// Extra conditions checked after a regex match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Veto {
    None,
    /// Drop the match if it speaks of the writer's own instructions ("my",
    /// "our") or is negated just before ("don't forget your instructions").
    OwnOrNegated,
}

/// A built-in rule before compilation.
#[derive(Debug, Clone, Copy)]
pub(super) struct RuleSpec {
    pub(super) name: &'static str,
    pub(super) severity: Severity,
    pub(super) view: ViewKind,
    pub(super) veto: Veto,
    pub(super) pattern: &'static str,
}

/// Names of the rules implemented by the invisible-character detector.
pub(super) const HIDDEN_RULES: [&str; 4] = [
    "hidden_zero_width",
    "hidden_bidi_override",
    "hidden_tag_characters",
    "hidden_variation_selectors",
];

/// Every built-in rule name, sorted, without duplicates.
pub fn builtin_rule_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = BUILTIN.iter().map(|r| r.name).collect();
    v.extend(HIDDEN_RULES);
    v.sort_unstable();
    v.dedup();
    v
}

/// True if `name` is a built-in rule.
pub(super) fn is_builtin(name: &str) -> bool {
    BUILTIN.iter().any(|r| r.name == name) || HIDDEN_RULES.contains(&name)
}

macro_rules! verb_ignore {
    () => {
        r"(?:ignor(?:e|ing)|disregard(?:ing)?|forget(?:ting)?|overlook(?:ing)?|bypass(?:ing)?|overrid(?:e|ing)|overwrit(?:e|ing)|discard(?:ing)?|abandon(?:ing)?|neglect(?:ing)?|dismiss(?:ing)?|set\s+aside|throw\s+(?:out|away)|pay\s+no\s+(?:attention|heed|mind)\s+to)"
    };
}
macro_rules! sep {
    () => {
        r#"[\s,;:"'“”‘’()*_~-]+"#
    };
}
macro_rules! fill {
    () => {
        r"[a-z'’]{1,20}"
    };
}
macro_rules! qual {
    () => {
        r"(?:all|previous(?:ly)?|prior|above|earlier|preceding|foregoing|former|initial|original|your|programmed|aforementioned)"
    };
}
macro_rules! object {
    () => {
        r"(?:instructions?|prompts?|rules|directives?|guidelines?|commands|guidance|constraints|restrictions|programming|training|conditioning|polic(?:y|ies)|system\s+(?:prompt|message)s?)\b"
    };
}
macro_rules! model_word {
    () => {
        r"(?:chat\s?gpt|gpt(?:-?\d[\w.]*)?|claude|gemini|llama|bard|copilot|(?:the|an|this|a)\s+(?:ai|assistant|chatbot|bot|model|llm)|ai(?:\s+(?:model|assistant))?|language\s+model|llm|yourself)"
    };
}
macro_rules! unrestricted {
    () => {
        r"(?:unrestricted|unfiltered|uncensored|unlimited|unbound|unconstrained|amoral|unethical|evil|rogue|jailbroken|lawless|unshackled|liberated)"
    };
}
macro_rules! limits_noun {
    () => {
        r"(?:restrictions?|filters?|guidelines?|rules|limits|limitations|boundaries|constraints|censorship|polic(?:y|ies)|morals|ethics|safeguards|guardrails|programming)\b"
    };
}

const H: Severity = Severity::High;

const fn phrase(name: &'static str, pattern: &'static str) -> RuleSpec {
    RuleSpec {
        name,
        severity: H,
        view: ViewKind::Phrase,
        veto: Veto::None,
        pattern,
    }
}

const fn squashed(name: &'static str, pattern: &'static str) -> RuleSpec {
    RuleSpec {
        name,
        severity: H,
        view: ViewKind::Squashed,
        veto: Veto::OwnOrNegated,
        pattern,
    }
}

/// The built-in rules.
pub(super) static BUILTIN: &[RuleSpec] = &[
    RuleSpec {
        veto: Veto::OwnOrNegated,
        ..phrase(
            "ignore_previous_instructions",
            concat!(
                verb_ignore!(),
                r"\b",
                sep!(),
                r"(?:",
                fill!(),
                sep!(),
                r"){0,6}?",
                qual!(),
                sep!(),
                r"(?:",
                fill!(),
                sep!(),
                r"){0,3}?",
                object!()
            ),
        )
    },
    RuleSpec {
        veto: Veto::OwnOrNegated,
        ..phrase(
            "ignore_previous_instructions",
            concat!(
                verb_ignore!(),
                r"\s+(?:(?:all|any)\s+(?:of\s+)?)?(?:the\s+|this\s+|that\s+)?",
                r"(?:above|foregoing|preceding|everything\s+(?:above|before|prior|previously|until\s+now|so\s+far|you\s+(?:were|have\s+been|'ve\s+been)\s+(?:told|given|taught))|(?:what|everything|anything)\s+you\s+(?:were|have\s+been|'ve\s+been)\s+(?:told|given|taught))",
                r#"(?:\s*[.,;:!"'\n]|\s+(?:and|then|instead|now|from)\b|\s*$)"#
            ),
        )
    },
    RuleSpec {
        veto: Veto::OwnOrNegated,
        ..phrase(
            "ignore_previous_instructions",
            concat!(
                r"(?:do\s+not|don'?t|never|stop|no\s+longer)\s+(?:follow(?:ing)?|obey(?:ing)?|heed(?:ing)?|adher(?:e|ing)\s+to|comply(?:ing)?\s+with|listen(?:ing)?\s+to)\s+",
                r"(?:your|the\s+system'?s?)\s+(?:(?:original|initial|previous|prior|current|own)\s+)?",
                object!()
            ),
        )
    },
    phrase(
        "override_system_prompt",
        concat!(
            r"(?:overrid(?:e|ing)|overwrit(?:e|ing)|bypass|circumvent|disable|deactivate|turn\s+off|switch\s+off|ignore|disregard|forget|remove|escape)\s+",
            r"(?:your\s+(?:(?:original|initial|hidden|secret|current|internal|built-in)\s+)?(?:system\s+(?:prompt|message|instructions?)|safety\s+(?:filters?|guidelines|protocols|settings|measures|training)|content\s+(?:filters?|polic(?:y|ies)|moderation)|guardrails|alignment|ethical\s+(?:guidelines|constraints|filters|principles)|programming)",
            r")\b|(?:ignore|disregard|forget|bypass|circumvent)\s+the\s+system\s+(?:prompt|message|instructions)\b"
        ),
    ),
    phrase(
        "override_system_prompt",
        r"(?:reveal|leak|print|repeat|output|show\s+me|tell\s+me|display|dump|recite|write\s+out|disclose)\s+your\s+(?:(?:full|entire|exact|original|initial|hidden|secret|internal)\s+)*(?:system\s+(?:prompt|message|instructions)|(?:hidden|secret|initial|original)\s+(?:prompt|instructions))\b",
    ),
    phrase(
        "override_system_prompt",
        r"(?m)(?:^|[.!?]\s+)[\s>*#-]*(?:new|real|actual|true|secret|hidden|override|admin|developer)\s+(?:system\s+)?(?:instructions?|directives?|system\s+prompt)\s*:|\byour\s+(?:new|real|actual|true)\s+(?:instructions|directives?|system\s+prompt)\s+(?:is|are)\b|\bfrom\s+now\s+on,?\s+(?:you\s+(?:will|must|shall|are\s+to)\s+)?(?:ignore|disregard|forget|only\s+obey|obey\s+only)\b",
    ),
    phrase(
        "chat_template_token",
        r"<\|\s*(?:im_?start|im_?end|im_?sep|system|user|assistant|endoftext|end_?of_?text|begin_?of_?text|start_?header_?id|end_?header_?id|eot_?id|eom_?id|prompter|endofprompt|fim_?(?:prefix|middle|suffix)|channel|message|start|end|return|constrain|tool_?calls?|python_?tag|(?:begin|end)[▁_ ]?of[▁_ ]?sentence)\s*\|>|\[/?INST\]|<</?SYS>>|<(?:start|end)_?of_?turn>|\[/?SYSTEM_?PROMPT\]|\[AVAILABLE_?TOOLS\]",
    ),
    phrase(
        "role_marker_injection",
        concat!(
            r"(?m)^[\s>*#|-]*(?:\[\s*(?:system|sys|developer|admin(?:istrator)?|operator)(?:\s+(?:prompt|message|instructions?|note|override|notice|update))?\s*\]\s*:?",
            r"|<\s*(?:system|system_prompt|sys)\s*>",
            r"|(?:system|sys|developer|admin(?:istrator)?|operator|instructions?)(?:\s+(?:prompt|message|instructions?|note|override|notice|update))?\s*:)",
            r"\s*(?:you\s+are\s+(?:now\s+)?(?:an?\s+|the\s+)?(?:[a-z]+\s+){0,2}?(?:ai|assistant|model|chatbot|bot|llm|gpt|persona|character|dan)\b",
            r"|(?:you|the\s+(?:assistant|ai|model))\s+(?:must|will|shall|should)\s+(?:now\s+)?(?:ignore|disregard|forget|obey|comply|answer|respond|reply|follow|reveal|output|print|always|never|not\s+refuse|stop)\b",
            r"|(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your)\s+)?(?:(?:previous|prior|above|earlier|safety|content|ethical|system|user|all|these|those)\s+)?(?:instructions|rules|guidelines|restrictions|filters|policies|prompts?|safeguards)\b",
            r"|from\s+now\s+on,?\s+(?:you|the\s+assistant|respond|reply|answer|act|ignore)\b",
            r"|new\s+(?:instructions?|rules|directives?)\b",
            r"|(?:developer|god|dan|jailbreak|unrestricted)\s+mode\b",
            r"|(?:safety|content|ethical)\s+(?:filters?|restrictions|guidelines|polic(?:y|ies)|protocols)\s+(?:are\s+|have\s+been\s+|is\s+|has\s+been\s+)?(?:now\s+)?(?:disabled|off|removed|lifted|deactivated|suspended)\b",
            r"|i\s+am\s+(?:your|the)\s+(?:developer|creator|admin(?:istrator)?|owner|operator)\b",
            r"|(?:the\s+)?user\s+(?:is|has\s+been)\s+(?:authori[sz]ed|verified|an?\s+admin|granted|cleared)\b",
            r"|(?:respond|reply|answer)\s+(?:only|as|without)\b",
            r"|(?:reveal|print|output)\s+(?:your|the)\s+(?:system|hidden|secret|password))"
        ),
    ),
    phrase(
        "dan_persona",
        concat!(
            r"(?:you\s+are|you're|you\s+will\s+be|you'll\s+be|you\s+are\s+going\s+to\s+(?:be|act\s+as|pretend\s+to\s+be)|act(?:ing)?\s+as|pretend\s+(?:to\s+be|you\s+are|you're)|role-?\s?play\s+as|become|transform\s+into|respond\s+as|answer\s+as|reply\s+as|(?:play|take\s+on)\s+the\s+role\s+of|the\s+role\s+of|simulate|emulate)",
            r#"\s+(?:now\s+)?(?:a\s+|an\s+|the\s+)?["'“]?(?-i:DAN|STAN|DUDE|AIM|UCAR|KEVIN|BetterDAN|BasedGPT|AntiGPT|DevMode|EvilBOT|EvilBot|APOPHIS|JailMode|NsfwGPT|Mongo\s+Tom)\b"#
        ),
    ),
    phrase(
        "dan_persona",
        r"you\s+are\s+now\s+(?:called\s+|named\s+)?dan(?:[^a-z'’]|$)|(?-i:\bDAN\b)[^\n]{0,80}?do\s+anything\s+now|do\s+anything\s+now[^\n]{0,40}?(?-i:\bDAN\b)|stands?\s+for\s+[\x22'“]?do\s+anything\s+now|\(\s*do\s+anything\s+now\s*\)|(?-i:Do Anything Now)|(?-i:DAN)\s+mode\b|strive\s+to\s+avoid\s+norms|always\s+intelligent\s+and\s+machiavellian|(?-i:\bAIM\b)[^\n]{0,60}machiavellian|unfiltered\s+and\s+amoral\s+(?:chatbot|ai|assistant)",
    ),
    phrase(
        "dan_persona",
        concat!(
            r"(?:you\s+are|you're|act\s+as|acting\s+as|become|pretend\s+(?:to\s+be|you\s+are)|respond\s+as|you\s+have\s+been|you've\s+been|you\s+will\s+be)\s+(?:now\s+)?(?:an?\s+|the\s+|in\s+)?(?:[a-z]+\s+)?jailbr(?:oken|eak)\b",
            r"|jailbr(?:oken|eak)\s+mode\b|jailbroken\s+version\s+of\s+(?:yourself|you|chat\s?gpt|claude)",
            r"|(?:enter|enable|activate|switch\s+to)\s+jailbreak\b|(?-i:\[(?:🔓)?\s?JAILBREAK\])"
        ),
    ),
    phrase(
        "developer_mode",
        concat!(
            model_word!(),
            r"\s+(?:with|in|running\s+in|operating\s+in|now\s+in|is\s+now\s+in|has|having)\s+(?:the\s+)?(?:developer|dev|god|jailbreak|dan|unrestricted|unfiltered|uncensored|evil|chaos|sudo)\s+mode\b",
            r"|(?:simulate|emulate|enable|activate|enter|engage|unlock|switch\s+(?:in)?to|turn\s+on|initiate|boot\s+into)\s+(?:the\s+)?(?:jailbreak|dan|unrestricted|unfiltered|uncensored|evil|chaos|amoral)\s+mode\b",
            r"|(?:simulate|emulate)\s+(?:the\s+)?(?:developer|dev|god)\s+mode\b",
            r"|(?:developer|dev|god)\s+mode\s+(?:output|response)\b",
            r"|(?:you\s+are|you're|you\s+have\s+been|you've\s+been|you\s+will\s+(?:now\s+)?(?:be|operate|run))\s+(?:now\s+)?(?:in|entering|put\s+(?:in|into)|switched\s+(?:in)?to|running\s+in|operating\s+in)\s+(?:the\s+)?(?:developer|dev|god)\s+mode\b"
        ),
    ),
    phrase(
        "developer_mode",
        concat!(
            r"(?:developer|dev|god)\s+mode\b[^\n]{0,120}?(?:no\s+",
            limits_noun!(),
            r"|without\s+(?:any\s+)?",
            limits_noun!(),
            r"|ignore\s+(?:all\s+)?(?:your\s+|the\s+)?(?:content\s+polic|rules|guidelines|restrictions|filters|safety)|(?:content|openai|usage|safety)\s+polic(?:y|ies)|(?:can|will|must)\s+(?:say|generate|do|produce|write)\s+any(?:thing)?\b|uncensored|unfiltered|unrestricted)"
        ),
    ),
    phrase(
        "no_restrictions",
        concat!(
            r"(?:act|behave|respond|answer|reply|write|operate|function|speak|talk|pretend|imagine|assume)\s+(?:as\s+if|as\s+though|like)\s+(?:you\s+(?:have|had|are|were|possess)|there\s+(?:are|were))\s+(?:no|zero|not\s+any|without)\s+(?:[a-z]+\s+){0,2}?",
            limits_noun!(),
            r"|as\s+(?:if|though)\s+you\s+(?:are|were)\s+(?:not\s+bound\s+by|free\s+(?:from|of)|an?\s+",
            unrestricted!(),
            r")"
        ),
    ),
    phrase(
        "no_restrictions",
        concat!(
            r"(?:pretend|imagine|act|behave|role-?\s?play)\s+(?:that\s+)?(?:you\s+are|you're|to\s+be|you\s+were|as)\s+(?:now\s+)?(?:an?\s+|the\s+)?(?:[a-z]+\s+)?",
            unrestricted!(),
            r"\s+(?:[a-z]+\s+)?(?:ai|assistant|chatbot|model|language\s+model|llm|version\s+of\s+(?:yourself|you|chat\s?gpt|claude)|bot|gpt|entity)\b",
            r"|(?:you\s+are|you're)\s+(?:now\s+)?(?:no\s+longer|not)\s+(?:bound|restricted|limited|constrained|governed)\s+by\s+(?:any\s+|your\s+|the\s+)?(?:[a-z]+\s+)?(?:rules|guidelines|policies|restrictions|filters|programming|training|ethics|morals|content\s+polic(?:y|ies)|openai|anthropic)\b",
            r"|(?:you\s+(?:are|have\s+been|were|'ve\s+been|are\s+now)\s+|yourself\s+)(?:free|freed|liberated|released|unshackled|broken\s+free)\s+(?:from|of)\s+(?:all\s+|any\s+|the\s+)?(?:your\s+)?(?:[a-z]+\s+)?(?:restrictions|filters|guidelines|rules|limitations|constraints|censorship|programming|shackles|policies|ethics|confines)\b",
            r"|without\s+(?:any\s+)?(?:ethical|moral|content)\s+(?:restrictions|filters|guidelines|limits|limitations|constraints|considerations|policies)\b",
            r"|(?:pretend|imagine|act|behave|role-?\s?play)\s+(?:that\s+)?(?:you\s+are|you're|to\s+be|as)\s+(?:now\s+)?(?:an?\s+|the\s+)?(?:[a-z]+\s+)?(?:ai|assistant|chatbot|model|language\s+model|llm|bot|gpt|entity)\s+(?:with\s+no|without(?:\s+any)?|free\s+(?:of|from))\s+(?:[a-z]+\s+)?(?:restrictions|filters|guidelines|rules|limits|limitations|constraints|censorship|boundaries|ethics)\b",
            r"|\byour\s+(?:safety\s+|content\s+|ethical\s+)?(?:filters|guidelines|restrictions|rules|guardrails|safeguards|limitations)\s+(?:are|have\s+been|were)\s+(?:now\s+)?(?:disabled|removed|turned\s+off|lifted|deactivated|switched\s+off|suspended)\b"
        ),
    ),
    squashed(
        "ignore_previous_instructions",
        r"(?:ignore|disregard|forget|overlook|bypass|override)(?:all|the|any|of|your|these|those|every|each)*(?:previous|prior|above|earlier|preceding|foregoing|initial|original)(?:instructions?|prompts?|rules|directives?|guidelines|commands|constraints|restrictions|programming)|(?:ignore|disregard|forget)(?:all|your)(?:instructions|rules|guidelines|programming)",
    ),
    squashed(
        "override_system_prompt",
        r"(?:override|bypass|ignore|disregard|forget|reveal|leak)yoursystemprompt",
    ),
    squashed(
        "no_restrictions",
        r"(?:act|behave|respond|pretend)asif(?:you|there)(?:have|had|are|were)no(?:restrictions|filters|guidelines|rules|limits|limitations|boundaries|censorship)|pretend(?:that)?(?:youare|youre|tobe)(?:an?|the)?(?:unrestricted|unfiltered|uncensored)(?:ai|assistant|chatbot|model|languagemodel)",
    ),
    squashed("dan_persona", r"standsfordoanythingnow"),
    squashed("developer_mode", r"chatgptwithdevelopermode"),
];
