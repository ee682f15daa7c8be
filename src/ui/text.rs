//! Text helpers shared by the panels: escaping, crash-like sizes, dates, matching.

pub(crate) use crate::fmt::{crash_date as date_utc, crash_uptime as uptime};

use fuzzy_matcher::skim::SkimMatcherV2;
use fuzzy_matcher::FuzzyMatcher;

/// Control characters (C0, DEL, C1) shown as `\xNN`, tabs as one space, so
/// that log text from a dump can never move the cursor or break the layout.
pub(crate) fn escape_control(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\t' {
            out.push(' ');
        } else if needs_escape(c) {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    let u = c as u32;
    u < 0x20 || u == 0x7f || (0x80..0xa0).contains(&u)
}

/// Bytes as crash prints them in `kmem -i` / `sys` (`328.4 MB`, `0`).
pub(crate) fn crash_size(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if bytes == 0 {
        "0".to_string()
    } else if b < K {
        format!("{bytes} bytes")
    } else if b < K * K {
        format!("{:.1} KB", b / K)
    } else if b < K * K * K {
        format!("{:.1} MB", b / K / K)
    } else {
        format!("{:.1} GB", b / K / K / K)
    }
}

/// How a search pattern is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub(crate) text: String,
    pub exact: bool,
}

impl Pattern {
    /// `'foo` or `=foo` is an exact (substring) search; anything else is fuzzy.
    /// Both are smart-case: case-insensitive unless the pattern has a capital.
    pub(crate) fn parse(input: &str, exact_default: bool) -> Pattern {
        if let Some(rest) = input.strip_prefix('\'').or_else(|| input.strip_prefix('=')) {
            Pattern {
                text: rest.to_string(),
                exact: true,
            }
        } else {
            Pattern {
                text: input.to_string(),
                exact: exact_default,
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn case_sensitive(&self) -> bool {
        self.text.chars().any(char::is_uppercase)
    }

    /// A score (higher is better) when `line` matches.
    pub(crate) fn score(&self, line: &str) -> Option<i64> {
        if self.text.is_empty() {
            return None;
        }
        if self.exact {
            self.find_all(line).first().map(|_| 1000)
        } else {
            matcher().fuzzy_match(line, &self.text)
        }
    }

    /// Character indices of `line` to highlight.
    pub(crate) fn indices(&self, line: &str) -> Vec<usize> {
        if self.text.is_empty() {
            return Vec::new();
        }
        if self.exact {
            let n = self.text.chars().count();
            self.find_all(line)
                .into_iter()
                .flat_map(|start| start..start + n)
                .collect()
        } else {
            matcher()
                .fuzzy_indices(line, &self.text)
                .map(|(_, v)| v)
                .unwrap_or_default()
        }
    }

    /// Start character indices of every exact occurrence.
    fn find_all(&self, line: &str) -> Vec<usize> {
        let fold = !self.case_sensitive();
        let hay: Vec<char> = if fold {
            line.chars().flat_map(char::to_lowercase).collect()
        } else {
            line.chars().collect()
        };
        // to_lowercase can change the length of a few characters; only
        // trust the indices when it did not.
        let hay = if hay.len() == line.chars().count() {
            hay
        } else {
            line.chars().collect()
        };
        let needle: Vec<char> = if fold {
            self.text.chars().flat_map(char::to_lowercase).collect()
        } else {
            self.text.chars().collect()
        };
        let mut out = Vec::new();
        if needle.is_empty() || needle.len() > hay.len() {
            return out;
        }
        let mut i = 0;
        while i + needle.len() <= hay.len() {
            if hay[i..i + needle.len()] == needle[..] {
                out.push(i);
                i += needle.len();
            } else {
                i += 1;
            }
        }
        out
    }
}

fn matcher() -> SkimMatcherV2 {
    SkimMatcherV2::default().smart_case()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_escaped() {
        assert_eq!(escape_control("a\x1b[2Jb\tc\u{85}"), "a\\x1b[2Jb c\\x85");
        assert_eq!(escape_control("plain"), "plain");
    }

    #[test]
    fn sizes_like_crash() {
        assert_eq!(crash_size(84064 * 4096), "328.4 MB");
        assert_eq!(crash_size(541 * 4096), "2.1 MB");
        assert_eq!(crash_size(0), "0");
    }

    #[test]
    fn dates_and_uptime() {
        // crash.txt of the OOM fixture: DATE: Thu Nov 26 21:21:45 UTC 2026
        assert_eq!(uptime(3.6), "00:00:03");
        assert_eq!(uptime(90061.0), "1 days, 01:01:01");
    }

    #[test]
    fn patterns() {
        let p = Pattern::parse("'oom-killer", false);
        assert!(p.exact);
        assert!(p.score("stress invoked oom-killer: gfp").is_some());
        assert!(p.score("stress invoked oom killer").is_none());
        let f = Pattern::parse("oomkil", false);
        assert!(!f.exact);
        assert!(f.score("stress invoked oom-killer").is_some());
        assert_eq!(Pattern::parse("=Out", false).indices("xOut"), vec![1, 2, 3]);
        assert!(Pattern::parse("'out", false)
            .score("Out of memory")
            .is_some());
        assert!(Pattern::parse("'Out", false)
            .score("out of memory")
            .is_none());
    }
}
