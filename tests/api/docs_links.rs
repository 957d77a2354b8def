//! Every relative link in the README and in `docs/` leads somewhere: the file
//! or folder it names exists (relative to the page that links to it), and an
//! `#anchor`, on the same page or into another Markdown page, is the slug of
//! one of that page's headings as GitHub makes them. Links to the web
//! (`http://`, `https://`, `mailto:`) and anything inside code (fenced blocks
//! and inline code spans) are left alone. Needs no services.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The repository's root: the root package's manifest is there.
fn root() -> PathBuf {
    crate::helpers::repository_root()
}

/// `README.md` and every `.md` file under `docs/`, in a stable order.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        let entries = fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("reading {}: {error}", folder.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text with every fenced code block blanked out, and every inline code
/// span too if `spans` (newlines kept, so positions still give line numbers).
fn prose(text: &str, spans: bool) -> Vec<char> {
    let mut out = Vec::with_capacity(text.len());
    // The fence that opened the block we are in: its character and length.
    let mut fence: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        let is_fence = run >= 3;
        let blank = match (fence, marker) {
            (None, Some(c)) if is_fence => {
                fence = Some((c, run));
                true
            }
            (None, _) => false,
            (Some((c, n)), Some(m)) if m == c && run >= n && trimmed[run..].trim().is_empty() => {
                fence = None;
                true
            }
            (Some(_), _) => true,
        };
        if blank {
            out.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        } else {
            out.extend(line.chars());
        }
    }
    if spans {
        blank_code_spans(&mut out);
    }
    out
}

/// Blanks the inside of each inline code span: a run of N backticks up to
/// the next run of exactly N, within one paragraph. A run without its match
/// is literal text.
fn blank_code_spans(text: &mut [char]) {
    let mut i = 0;
    while i < text.len() {
        if text[i] != '`' {
            i += 1;
            continue;
        }
        let open = run_length(text, i);
        let mut j = i + open;
        let mut close = None;
        while j < text.len() {
            if text[j] == '\n' && ends_paragraph(text, j) {
                break;
            }
            if text[j] == '`' {
                let run = run_length(text, j);
                if run == open {
                    close = Some(j);
                    break;
                }
                j += run;
            } else {
                j += 1;
            }
        }
        match close {
            Some(close) => {
                for c in &mut text[i..close + open] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = close + open;
            }
            None => i += open,
        }
    }
}

fn run_length(text: &[char], at: usize) -> usize {
    text[at..].iter().take_while(|c| **c == '`').count()
}

/// Whether the newline at `at` is followed by a blank line.
fn ends_paragraph(text: &[char], at: usize) -> bool {
    text[at + 1..]
        .iter()
        .take_while(|c| **c != '\n')
        .all(|c| c.is_whitespace())
}

/// A heading's anchor as GitHub makes it: lowercase, each space a `-`, every
/// other character but letters, digits, `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// Inline links in a heading read as their text: `[text](url)` is `text`.
fn link_text_only(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|at| open + at) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|at| close + at) else {
            break;
        };
        out.push_str(rest[..open].trim_end_matches('!'));
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The anchors of a page's headings, a repeated one numbered as GitHub
/// numbers it (`name`, `name-1`, `name-2` …).
fn anchors(text: &str) -> BTreeSet<String> {
    let prose: String = prose(text, false).into_iter().collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for line in prose.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let line = line.trim_start_matches(' ');
        let level = line.chars().take_while(|c| *c == '#').count();
        if indent > 3 || !(1..=6).contains(&level) {
            continue;
        }
        let rest = &line[level..];
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            continue;
        }
        // A closing sequence of `#`s is not part of the heading.
        let mut title = rest.trim();
        let unclosed = title.trim_end_matches('#');
        if unclosed.is_empty() || unclosed.ends_with(' ') {
            title = unclosed.trim_end();
        }
        let base = slug(&link_text_only(title));
        let count = seen.entry(base.clone()).or_insert(0);
        let anchor = if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        };
        *count += 1;
        anchors.insert(anchor);
    }
    anchors
}

/// A link found in a page: its line and its destination, as written.
struct Link {
    line: usize,
    destination: String,
}

/// Every inline link and image in the prose of `text`: `[text](destination)`
/// or `[text](destination "title")`.
fn links(text: &str) -> Vec<Link> {
    let chars = prose(text, true);
    let mut links = Vec::new();
    let mut i = 0;
    while i + 1 < chars.len() {
        let escaped = i > 0 && chars[i - 1] == '\\';
        if chars[i] != ']' || chars[i + 1] != '(' || escaped {
            i += 1;
            continue;
        }
        let start = i + 2;
        let mut depth = 1;
        let mut end = start;
        while end < chars.len() && chars[end] != '\n' {
            match chars[end] {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            end += 1;
        }
        if depth == 0 {
            let inside: String = chars[start..end].iter().collect();
            let inside = inside.trim();
            let destination = match inside.strip_prefix('<') {
                Some(bracketed) => bracketed.split('>').next().unwrap_or_default(),
                None => inside.split_whitespace().next().unwrap_or_default(),
            };
            links.push(Link {
                line: 1 + chars[..i].iter().filter(|c| **c == '\n').count(),
                destination: destination.to_owned(),
            });
        }
        i = end.max(i + 1);
    }
    links
}

/// `path` as a reader finds it: relative to the repository where it is in it.
fn shown(path: &Path) -> String {
    let root = root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// What is wrong with the links of `files`, one line each.
fn broken_links(files: &[PathBuf]) -> Vec<String> {
    let mut headings: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in files {
        let text = fs::read_to_string(file)
            .unwrap_or_else(|error| panic!("reading {}: {error}", file.display()));
        for link in links(&text) {
            let destination = link.destination.as_str();
            let external = ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| destination.starts_with(scheme));
            if external {
                continue;
            }
            let at = format!("{}:{}", shown(file), link.line);
            if destination.is_empty() {
                problems.push(format!("{at}: a link with no destination"));
                continue;
            }
            let (path, anchor) = match destination.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (destination, None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else {
                let folder = file.parent().expect("a page is in a folder");
                folder.join(path.replace("%20", " "))
            };
            if !target.exists() {
                problems.push(format!(
                    "{at}: `{destination}`: {} does not exist",
                    shown(&target)
                ));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if !target.is_file() || target.extension().is_none_or(|ext| ext != "md") {
                continue;
            }
            let known = headings.entry(target.clone()).or_insert_with(|| {
                let text = fs::read_to_string(&target)
                    .unwrap_or_else(|error| panic!("reading {}: {error}", target.display()));
                anchors(&text)
            });
            if !known.contains(anchor) {
                problems.push(format!(
                    "{at}: `{destination}`: {} has no heading whose anchor is `#{anchor}`",
                    shown(&target)
                ));
            }
        }
    }
    problems
}

#[test]
fn every_relative_link_in_the_readme_and_docs_leads_somewhere() {
    let root = root();
    let files = markdown_files(&root);
    assert!(files.len() > 2, "found the README and the docs: {files:?}");
    let problems = broken_links(&files);
    assert!(
        problems.is_empty(),
        "{} broken link(s) in the README and docs/:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(
        slug("What `./dev test` checks in the deploy files"),
        "what-dev-test-checks-in-the-deploy-files"
    );
    assert_eq!(
        slug("Live: subscriptions over WebSocket"),
        "live-subscriptions-over-websocket"
    );
    assert_eq!(
        slug("Cloud (DOKS, GKE, AKS with Redpanda Cloud)"),
        "cloud-doks-gke-aks-with-redpanda-cloud"
    );
    assert_eq!(slug("0001 — the horizon"), "0001--the-horizon");
    assert_eq!(slug("task_list and `TASK-42`"), "task_list-and-task-42");
    let page = "# Notes\n\n## Notes\n\n## See [the API](api.md) #\n\n```\n# not a heading\n```\n";
    let found = anchors(page);
    let expected = ["notes", "notes-1", "see-the-api"];
    assert_eq!(found, expected.iter().map(|a| (*a).to_owned()).collect());
}

#[test]
fn a_broken_link_or_anchor_is_found_and_code_is_left_alone() {
    let folder = std::env::temp_dir().join(format!("taskledger-docs-links-{}", std::process::id()));
    fs::create_dir_all(folder.join("sub")).unwrap();
    let page = folder.join("page.md");
    fs::write(
        folder.join("sub/other.md"),
        "# Other page\n\n## A section, with punctuation!\n",
    )
    .unwrap();
    fs::write(
        &page,
        "# Page\n\n\
         [fine](sub/other.md#a-section-with-punctuation) and [here](#page), \
         [a folder](sub/), [the web](https://example.com/nowhere.md).\n\
         [missing file](sub/none.md) and [missing anchor](sub/other.md#nothing).\n\n\
         `[in code](nowhere.md)` is code, as is:\n\n\
         ```md\n[in a fence](nowhere.md)\n```\n\n\
         [missing here](#no-such-heading)\n",
    )
    .unwrap();
    let problems = broken_links(std::slice::from_ref(&page));
    fs::remove_dir_all(&folder).unwrap();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("page.md:4") && problems[0].contains("sub/none.md"));
    assert!(problems[1].contains("#nothing"));
    assert!(problems[2].contains("page.md:12") && problems[2].contains("#no-such-heading"));
}
