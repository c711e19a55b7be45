//! Small inline SVG drawings: the memory-map strip and call paths. Text in
//! them is escaped like the rest of the page; nothing refers outside the
//! drawing.

use std::fmt::Write as _;

use super::{esc, hex, human_bytes};

/// What a stretch of the address space is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Paint {
    /// Code proven equal to its binary.
    CleanCode,
    /// Code that differs from its binary.
    Tampered,
    /// Code the dump cannot prove (bytes missing, no file, relocations), or
    /// whose binary changed on disk.
    Unverifiable,
    /// Kernel-provided code (vDSO) that could not be compared.
    Kernel,
    /// Executable memory no file backs.
    AnonExec,
    /// Writable and executable memory.
    Wx,
    /// Data: heap, stacks, file data (the process state).
    State,
    /// Data the dump does not hold.
    NotHeld,
}

impl Paint {
    /// Every paint, in legend order.
    pub const ALL: [Paint; 8] = [
        Paint::CleanCode,
        Paint::Tampered,
        Paint::Unverifiable,
        Paint::Kernel,
        Paint::AnonExec,
        Paint::Wx,
        Paint::State,
        Paint::NotHeld,
    ];

    /// Fill colour.
    #[must_use]
    pub fn color(self) -> &'static str {
        match self {
            Paint::CleanCode => "#2da44e",
            Paint::Tampered => "#d1242f",
            Paint::Unverifiable => "#d4a72c",
            Paint::Kernel => "#54aeff",
            Paint::AnonExec => "#8250df",
            Paint::Wx => "#8c1d18",
            Paint::State => "#afb8c1",
            Paint::NotHeld => "#eaeef2",
        }
    }

    /// Legend text (also the `data-paint` value the tests read).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Paint::CleanCode => "clean code",
            Paint::Tampered => "tampered code",
            Paint::Unverifiable => "unverifiable code",
            Paint::Kernel => "kernel code",
            Paint::AnonExec => "anonymous executable",
            Paint::Wx => "W+X",
            Paint::State => "state (data)",
            Paint::NotHeld => "not in the dump",
        }
    }
}

/// One stretch of the strip.
#[derive(Debug, Clone)]
pub struct Stretch {
    /// First address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// Colour.
    pub paint: Paint,
    /// Hover text (escaped when drawn).
    pub label: String,
    /// Short caption drawn under wide stretches (escaped).
    pub caption: String,
}

/// A mark inside a stretch (a tampered run).
#[derive(Debug, Clone)]
pub struct Mark {
    /// First address.
    pub addr: u64,
    /// Length.
    pub len: u64,
    /// Hover text.
    pub label: String,
    /// Where the mark links to on the page (`#id`, made of hex digits).
    pub anchor: String,
}

const STRIP_H: u32 = 34;
const GAP_W: f64 = 10.0;
const MIN_W: f64 = 3.0;

/// The legend of the strip, as HTML.
#[must_use]
pub fn legend(used: &[Paint]) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for p in Paint::ALL.iter().filter(|p| used.contains(p)) {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            p.color(),
            esc(p.label())
        );
    }
    s.push_str("<span><i style=\"background:repeating-linear-gradient(90deg,#fff 0 2px,#8c959f 2px 4px)\"></i>unmapped gap (not to scale)</span></div>");
    s
}

/// The address space as a strip: every stretch's width is proportional to
/// its size (at least a few pixels so none vanishes), unmapped gaps are cut
/// to a fixed width. `marks` are drawn over their stretch.
#[must_use]
pub fn memory_strip(stretches: &[Stretch], marks: &[Mark]) -> String {
    let total: u64 = stretches
        .iter()
        .map(|s| s.end.saturating_sub(s.start))
        .fold(0u64, u64::saturating_add)
        .max(1);
    let gaps = stretches
        .windows(2)
        .filter(|w| matches!(w, [a, b] if b.start > a.end))
        .count();
    let fixed = stretches.len() as f64 * MIN_W + gaps as f64 * GAP_W;
    let width = (fixed + 1100.0).max(1200.0);
    let usable = width - fixed;
    let mut x = 0.0f64;
    let mut body = String::new();
    let mut captions = String::new();
    let mut placed: Vec<(u64, u64, f64, f64)> = Vec::with_capacity(stretches.len());
    let mut prev_end: Option<u64> = None;
    for st in stretches {
        if prev_end.is_some_and(|e| st.start > e) {
            let _ = write!(
                body,
                "<rect x=\"{x:.1}\" y=\"4\" width=\"{GAP_W}\" height=\"{h}\" fill=\"url(#gap)\"/>",
                h = STRIP_H - 8
            );
            x += GAP_W;
        }
        let size = st.end.saturating_sub(st.start);
        let w = MIN_W + usable * (size as f64 / total as f64);
        let _ = write!(
            body,
            "<rect class=\"region\" data-paint=\"{p}\" x=\"{x:.1}\" y=\"0\" width=\"{w:.1}\" height=\"{STRIP_H}\" fill=\"{c}\" stroke=\"#fff\" stroke-width=\"0.5\"><title>{t}</title></rect>",
            p = esc(st.paint.label()),
            c = st.paint.color(),
            t = esc(&format!(
                "{}-{} ({}) {}",
                hex(st.start),
                hex(st.end),
                human_bytes(size),
                st.label
            ))
        );
        if w > 70.0 && !st.caption.is_empty() {
            let max_chars = ((w - 4.0) / 6.2).max(1.0) as usize;
            let cap: String = st.caption.chars().take(max_chars).collect();
            let _ = write!(
                captions,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" fill=\"#333\">{}</text>",
                x + 2.0,
                STRIP_H + 13,
                esc(&cap)
            );
        }
        placed.push((st.start, st.end, x, w));
        x += w;
        prev_end = Some(st.end);
    }
    for m in marks {
        let Some(&(start, end, rx, rw)) = placed
            .iter()
            .find(|(s, e, _, _)| m.addr >= *s && m.addr < *e)
        else {
            continue;
        };
        let span = end.saturating_sub(start).max(1) as f64;
        let mx = rx + rw * (m.addr.saturating_sub(start) as f64 / span);
        let mw = (rw * (m.len as f64 / span)).max(3.0);
        let _ = write!(
            body,
            "<a href=\"#{a}\"><rect class=\"mark\" x=\"{:.1}\" y=\"-4\" width=\"{mw:.1}\" height=\"{}\" fill=\"#d1242f\" stroke=\"#000\" stroke-width=\"1\"><title>{t}</title></rect></a>",
            mx.min(rx + rw - 3.0).max(rx),
            STRIP_H + 8,
            a = esc(&m.anchor),
            t = esc(&m.label)
        );
    }
    format!(
        "<div class=\"strip\"><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"memory map\" width=\"{w:.0}\" height=\"{h}\" viewBox=\"0 -6 {w:.0} {h}\"><defs><pattern id=\"gap\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\"><rect width=\"2\" height=\"4\" fill=\"#8c959f\"/></pattern></defs>{body}{captions}</svg></div>",
        w = x.max(1.0),
        h = STRIP_H + 24,
    )
}

/// A call path drawn top to bottom: `nodes` are boxes joined by arrows;
/// the last one is highlighted (the instruction).
#[must_use]
pub fn chain(nodes: &[String]) -> String {
    const BOX_H: u32 = 24;
    const STEP: u32 = 38;
    const MAX_CHARS: usize = 70;
    let longest = nodes
        .iter()
        .map(|n| n.chars().count().min(MAX_CHARS))
        .max()
        .unwrap_or(1);
    let w = (longest as u32 * 7 + 24).max(120);
    let h = (nodes.len() as u32).max(1) * STEP;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"path\" role=\"img\" aria-label=\"call path\" width=\"{}\" height=\"{h}\" viewBox=\"0 0 {} {h}\">",
        w + 4,
        w + 4
    );
    s.push_str("<defs><marker id=\"arr\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#57606a\"/></marker></defs>");
    let last = nodes.len().saturating_sub(1);
    for (i, n) in nodes.iter().enumerate() {
        let y = i as u32 * STEP + 2;
        let (fill, stroke) = if i == last {
            ("#ffe1de", "#b3261e")
        } else if n == "..." {
            ("#ffffff", "#d5dae0")
        } else {
            ("#f4f6f8", "#8c959f")
        };
        let shown: String = if n.chars().count() > MAX_CHARS {
            let mut t: String = n.chars().take(MAX_CHARS - 1).collect();
            t.push('\u{2026}');
            t
        } else {
            n.clone()
        };
        let _ = write!(
            s,
            "<g class=\"node\"><title>{t}</title><rect x=\"2\" y=\"{y}\" width=\"{w}\" height=\"{BOX_H}\" rx=\"4\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"10\" y=\"{}\" font-family=\"monospace\" font-size=\"12\">{shown}</text></g>",
            y + 16,
            t = esc(n),
            shown = esc(&shown)
        );
        if i < last {
            let _ = write!(
                s,
                "<line x1=\"30\" y1=\"{}\" x2=\"30\" y2=\"{}\" stroke=\"#57606a\" stroke-width=\"1.5\" marker-end=\"url(#arr)\"/>",
                y + BOX_H,
                y + STEP - 1
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_widths_follow_sizes_and_gaps_are_cut() {
        let st = |start: u64, end: u64, paint| Stretch {
            start,
            end,
            paint,
            label: "<x>".into(),
            caption: "c".into(),
        };
        let s = memory_strip(
            &[
                st(0x1000, 0x2000, Paint::CleanCode),
                st(0x2000, 0x9000, Paint::State),
                st(0x7f00_0000_0000, 0x7f00_0000_1000, Paint::AnonExec),
            ],
            &[],
        );
        assert_eq!(s.matches("class=\"region\"").count(), 3);
        assert_eq!(s.matches("url(#gap)").count(), 1);
        assert!(s.contains("&lt;x&gt;") && !s.contains("<x>"));
    }

    #[test]
    fn chain_escapes_names() {
        let s = chain(&["_start".into(), "<script>".into(), "syscall".into()]);
        assert!(!s.contains("<script>"));
        assert_eq!(s.matches("class=\"node\"").count(), 3);
    }
}
