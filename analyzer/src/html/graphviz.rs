//! Laying out DOT with graphviz `dot -Tsvg` for inlining into a page.
//!
//! graphviz escapes label text itself; what comes back is still checked
//! before it is inlined: the XML prolog, doctype and comments are dropped,
//! and an SVG that holds a script, a foreign object, a link or an event
//! attribute is not inlined at all.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// What laying out one graph gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The `<svg>` element, ready to inline.
    Svg(String),
    /// graphviz is not installed.
    NoGraphviz,
    /// graphviz failed or produced something that is not inlined; why.
    Failed(String),
}

/// Whether graphviz `dot` can be run.
#[must_use]
pub fn available() -> bool {
    Command::new("dot")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Lay out one DOT graph.
#[must_use]
pub fn layout(dot: &str) -> Layout {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Layout::NoGraphviz,
        Err(e) => return Layout::Failed(format!("cannot start graphviz `dot`: {e}")),
    };
    let Some(mut stdin) = child.stdin.take() else {
        return Layout::Failed("graphviz `dot` has no stdin".into());
    };
    let input = dot.as_bytes().to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return Layout::Failed(format!("running graphviz `dot`: {e}")),
    };
    let _ = writer.join();
    if !out.status.success() {
        return Layout::Failed(format!(
            "graphviz `dot -Tsvg` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    match String::from_utf8(out.stdout) {
        Ok(s) => sanitise(&s),
        Err(_) => Layout::Failed("graphviz wrote something that is not UTF-8".into()),
    }
}

/// Lay out several graphs, two at a time (graphviz is single-threaded).
#[must_use]
pub fn layout_all(dots: &[String]) -> Vec<Layout> {
    let mut out: Vec<Option<Layout>> = vec![None; dots.len()];
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(&mut out);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(dot) = dots.get(i) else { break };
                    let l = layout(dot);
                    let mut r = results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(slot) = r.get_mut(i) {
                        *slot = Some(l);
                    }
                }
            });
        }
    });
    out.into_iter()
        .map(|l| l.unwrap_or_else(|| Layout::Failed("not laid out".into())))
        .collect()
}

/// Keep the `<svg>` element without comments; refuse active content.
fn sanitise(svg: &str) -> Layout {
    let Some(start) = svg.find("<svg") else {
        return Layout::Failed("graphviz wrote no <svg> element".into());
    };
    let Some(end) = svg.rfind("</svg>") else {
        return Layout::Failed("graphviz wrote an unterminated <svg> element".into());
    };
    let Some(body) = svg.get(start..end + "</svg>".len()) else {
        return Layout::Failed("graphviz output is malformed".into());
    };
    let mut clean = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find("<!--") {
        clean.push_str(rest.get(..i).unwrap_or(""));
        match rest.get(i..).and_then(|r| r.find("-->")) {
            Some(j) => rest = rest.get(i + j + 3..).unwrap_or(""),
            None => return Layout::Failed("graphviz output has an open comment".into()),
        }
    }
    clean.push_str(rest);
    let lower = clean.to_ascii_lowercase();
    let active = [
        "<script",
        "<foreignobject",
        "href=",
        "javascript:",
        "<iframe",
        "<image",
    ];
    if active.iter().any(|a| lower.contains(a)) || has_event_attribute(&lower) {
        return Layout::Failed("graphviz output holds active content; not inlined".into());
    }
    Layout::Svg(clean)
}

/// Whether any tag has an `on...=` attribute. Text between tags is not
/// looked at (graphviz escapes `<` in text, so every `<` opens a tag).
fn has_event_attribute(lower: &str) -> bool {
    for tag in lower.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or("");
        let mut prev_space = false;
        let bytes = tag.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if prev_space && b == b'o' && bytes.get(i + 1) == Some(&b'n') {
                let name: Vec<u8> = bytes
                    .iter()
                    .skip(i)
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .copied()
                    .collect();
                let after = bytes.get(i + name.len()).copied();
                if name.len() > 2 && matches!(after, Some(b'=' | b' ')) {
                    return true;
                }
            }
            prev_space = b.is_ascii_whitespace();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prolog_and_comments_are_dropped() {
        let s = "<?xml version=\"1.0\"?>\n<!DOCTYPE svg>\n<svg width=\"1\"><!-- x --><g><title>a</title></g></svg>\n";
        assert_eq!(
            sanitise(s),
            Layout::Svg("<svg width=\"1\"><g><title>a</title></g></svg>".into())
        );
    }

    #[test]
    fn active_content_is_refused() {
        for bad in [
            "<svg><script>x</script></svg>",
            "<svg><g onload=\"x\"></g></svg>",
            "<svg><a xlink:href=\"http://x\"></a></svg>",
        ] {
            assert!(matches!(sanitise(bad), Layout::Failed(_)), "{bad}");
        }
        // Text that merely mentions "on" is fine.
        assert!(matches!(
            sanitise("<svg><text font-size=\"9\">jump on true</text></svg>"),
            Layout::Svg(_)
        ));
    }
}
