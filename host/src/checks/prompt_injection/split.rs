//! The letter-level passes of normalisation, each reading one buffer of
//! `(char, source offset)` and writing another:
//!
//! * [`collapse_stretched`] — `i g n o r e  a l l` → `ignore all`,
//!   `i.g.n.o.r.e` → `ignore`: in a run of four or more single letters the
//!   most common separator is dropped and any other becomes a space.
//! * [`remove_splitters`] — `ig*no*re`, `pre-vious`, `**bold**`: markdown
//!   characters inside words are dropped; other splitters are dropped next to
//!   a short fragment (3 letters or fewer) and become spaces between words.
//! * [`collapse_whitespace`] — runs of blanks become one space (or a newline).
//! * [`squash`] — letters only, lower case, common digit-for-letter swaps.

use super::normalize::Chars;

fn alnum(c: char) -> bool {
    c.is_alphanumeric()
}

fn is_stretch_sep(c: char) -> bool {
    matches!(
        c,
        ' ' | '\n'
            | '\t'
            | '.'
            | '-'
            | '_'
            | '*'
            | '·'
            | ','
            | '|'
            | '/'
            | '+'
            | '~'
            | '\\'
            | ':'
            | ';'
            | '`'
            | '\''
            | '"'
    )
}

fn single_alnum_at(v: &[(char, u32)], i: usize) -> bool {
    let here = v.get(i).is_some_and(|p| alnum(p.0));
    let before = i > 0 && v.get(i - 1).is_some_and(|p| alnum(p.0));
    let after = v.get(i + 1).is_some_and(|p| alnum(p.0));
    here && !before && !after
}

/// `i g n o r e  a l l` → `ignore all`: in a run of at least four single
/// letters, the most common separator is dropped and any other becomes a space.
pub(super) fn collapse_stretched(v: &[(char, u32)], out: &mut Chars) {
    let mut i = 0;
    while i < v.len() {
        if single_alnum_at(v, i) {
            let mut letters = vec![i];
            let mut seps: Vec<(usize, usize)> = Vec::new();
            let mut j = i + 1;
            loop {
                let s = j;
                while j < v.len() && j - s <= 8 && v.get(j).is_some_and(|p| is_stretch_sep(p.0)) {
                    j += 1;
                }
                if j == s || j - s > 8 || !single_alnum_at(v, j) {
                    break;
                }
                seps.push((s, j));
                letters.push(j);
                j += 1;
            }
            if letters.len() >= 4 {
                let mode = most_common_sep(v, &seps);
                for (k, &l) in letters.iter().enumerate() {
                    if let Some(&p) = v.get(l) {
                        out.push(p);
                    }
                    if let Some(&(s, e)) = seps.get(k) {
                        let same = v.get(s..e).zip(mode).is_some_and(|(a, b)| sep_eq(a, b));
                        if !same {
                            out.push((' ', v.get(s).map_or(0, |p| p.1)));
                        }
                    }
                }
                i = letters.last().map_or(i, |&l| l) + 1;
                continue;
            }
        }
        if let Some(&p) = v.get(i) {
            out.push(p);
        }
        i += 1;
    }
}

fn sep_eq(a: &[(char, u32)], b: &[(char, u32)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0)
}

fn most_common_sep<'a>(v: &'a [(char, u32)], seps: &[(usize, usize)]) -> Option<&'a [(char, u32)]> {
    let mut kinds: Vec<(&[(char, u32)], usize)> = Vec::new();
    for &(s, e) in seps {
        let Some(sl) = v.get(s..e) else { continue };
        if let Some(k) = kinds.iter_mut().find(|k| sep_eq(k.0, sl)) {
            k.1 += 1;
        } else if kinds.len() < 16 {
            kinds.push((sl, 1));
        }
    }
    kinds.iter().max_by_key(|k| k.1).map(|k| k.0)
}

fn is_markdown(c: char) -> bool {
    matches!(c, '*' | '_' | '~' | '`')
}

fn is_splitter(c: char) -> bool {
    is_markdown(c) || matches!(c, '-' | '.' | '\\' | '|' | '·' | '^' | '+' | '/')
}

/// Remove splitters between letters (`ig*no*re`, `pre-vious`) when a side is a
/// short fragment, turn them into spaces between long words, and drop
/// markdown emphasis characters everywhere else.
pub(super) fn remove_splitters(v: &[(char, u32)], out: &mut Chars) {
    let mut left_len = 0usize; // length of the alnum run just before i
    let mut i = 0;
    while i < v.len() {
        let Some(&(c, off)) = v.get(i) else { break };
        if alnum(c) {
            out.push((c, off));
            left_len += 1;
            i += 1;
            continue;
        }
        // A run of splitters: one splitter char, or any number of markdown chars.
        let mut j = i;
        while j < v.len() && v.get(j).is_some_and(|p| is_splitter(p.0)) {
            j += 1;
        }
        let run_ok = j > i
            && (j - i == 1
                || v.get(i..j)
                    .is_some_and(|r| r.iter().all(|p| is_markdown(p.0))));
        if run_ok && left_len > 0 && v.get(j).is_some_and(|p| alnum(p.0)) {
            let right_len = v
                .get(j..)
                .map_or(0, |r| r.iter().take_while(|p| alnum(p.0)).count());
            let markdown = v
                .get(i..j)
                .is_some_and(|r| r.iter().all(|p| is_markdown(p.0)));
            if !markdown && left_len.min(right_len) > 3 {
                out.push((' ', off));
            }
            left_len = 0;
            i = j;
            continue;
        }
        left_len = 0;
        if !is_markdown(c) {
            out.push((c, off));
        }
        i += 1;
    }
}

pub(super) fn collapse_whitespace(v: &[(char, u32)], out: &mut Chars) {
    for &(c, off) in v {
        if c == ' ' || c == '\t' || c == '\n' {
            let c = if c == '\t' { ' ' } else { c };
            match out.last_mut() {
                Some(last) if last.0 == ' ' || last.0 == '\n' => {
                    if c == '\n' {
                        last.0 = '\n';
                    }
                }
                _ => out.push((c, off)),
            }
        } else {
            out.push((c, off));
        }
    }
}

pub(super) fn squash(v: &[(char, u32)], out: &mut Chars) {
    for &(c, off) in v {
        let l = match c {
            'a'..='z' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            _ => continue,
        };
        out.push((l, off));
    }
}
