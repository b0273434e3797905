//! The LFW View 2 pairs file: folds of matched and mismatched photo pairs.
//!
//! The first line is `<folds> <n>`; then, per fold, `n` matched lines `name idx1 idx2`
//! and `n` mismatched lines `name1 idx1 name2 idx2` (fields separated by tabs or
//! spaces). Indices are 1-based photo numbers: photo `idx` of `name` is
//! `<dir>/<name>/<name>_<idx:04>.jpg`. Folds are numbered from 1, as in the LFW paper.

use std::path::{Path, PathBuf};

use super::error::{EvalError, Result};

/// One photo of the data folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Photo {
    pub name: String,
    pub index: u32,
}

impl Photo {
    /// `<dir>/<name>/<name>_<index:04>.jpg`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.name)
            .join(format!("{}_{:04}.jpg", self.name, self.index))
    }
}

/// Two photos, of the same person or not, and the file line that names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub a: Photo,
    pub b: Photo,
    pub same: bool,
    pub line: usize,
}

/// A parsed pairs file: `folds[f]` holds fold `f + 1`, its matched pairs first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairsFile {
    /// Where the pairs came from, for messages.
    pub file: String,
    pub folds: Vec<Vec<Pair>>,
}

impl PairsFile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<PairsFile> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::Output {
            path: path.display().to_string(),
            message: format!("cannot read the pairs file: {e}"),
        })?;
        PairsFile::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a pairs file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<PairsFile> {
        let bad = |line: usize, message: String| EvalError::PairsLine {
            file: file.to_string(),
            line,
            message,
        };
        // Numbered from 1; blank lines are skipped wherever they are.
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.split_whitespace().collect::<Vec<&str>>()))
            .filter(|(_, fields)| !fields.is_empty());
        let (first, header) = lines
            .next()
            .ok_or_else(|| bad(1, "empty file: expected a header `<folds> <n>`".into()))?;
        let count = |s: &str, what: &str| -> Result<usize> {
            s.parse::<usize>().ok().filter(|&v| v > 0).ok_or_else(|| {
                bad(
                    first,
                    format!("{what} must be a positive number, got `{s}`"),
                )
            })
        };
        let [folds, n] = header[..] else {
            return Err(bad(
                first,
                format!(
                    "expected a header `<folds> <n>`, got {} field(s)",
                    header.len()
                ),
            ));
        };
        let (folds, n) = (count(folds, "the number of folds")?, count(n, "n")?);
        let mut out = Vec::with_capacity(folds);
        for fold in 1..=folds {
            let mut pairs = Vec::with_capacity(2 * n);
            for i in 0..2 * n {
                let same = i < n;
                let kind = if same { "matched" } else { "mismatched" };
                let Some((line, fields)) = lines.next() else {
                    return Err(bad(
                        text.lines().count() + 1,
                        format!(
                            "file ends early: fold {fold} needs {n} matched and {n} mismatched \
                             pairs, found {i} pair(s)"
                        ),
                    ));
                };
                let index = |s: &str| -> Result<u32> {
                    s.parse::<u32>().ok().filter(|&v| v > 0).ok_or_else(|| {
                        bad(
                            line,
                            format!("photo numbers start at 1, got `{s}` (fold {fold}, {kind})"),
                        )
                    })
                };
                let photo = |name: &str, idx: &str| -> Result<Photo> {
                    Ok(Photo {
                        name: name.to_string(),
                        index: index(idx)?,
                    })
                };
                let (a, b) = match (same, &fields[..]) {
                    (true, [name, i1, i2]) => (photo(name, i1)?, photo(name, i2)?),
                    (false, [n1, i1, n2, i2]) => (photo(n1, i1)?, photo(n2, i2)?),
                    _ => {
                        let expected = if same {
                            "`name idx1 idx2`"
                        } else {
                            "`name1 idx1 name2 idx2`"
                        };
                        return Err(bad(
                            line,
                            format!(
                                "fold {fold}: expected a {kind} pair {expected}, got {} field(s)",
                                fields.len()
                            ),
                        ));
                    }
                };
                pairs.push(Pair { a, b, same, line });
            }
            out.push(pairs);
        }
        if let Some((line, _)) = lines.next() {
            return Err(bad(
                line,
                format!("unexpected line after the {folds} fold(s) of {n}+{n} pairs"),
            ));
        }
        Ok(PairsFile {
            file: file.to_string(),
            folds: out,
        })
    }

    /// The folds numbered in `chosen` (1-based, in the order given), or all of them.
    pub fn select(&self, chosen: Option<&[usize]>) -> Result<Vec<(usize, &[Pair])>> {
        let all: Vec<usize> = (1..=self.folds.len()).collect();
        let numbers = chosen.unwrap_or(&all);
        let mut seen = Vec::new();
        numbers
            .iter()
            .map(|&f| {
                if f == 0 || f > self.folds.len() {
                    return Err(EvalError::Invalid(format!(
                        "fold {f} is not in {} (folds 1 to {})",
                        self.file,
                        self.folds.len()
                    )));
                }
                if seen.contains(&f) {
                    return Err(EvalError::Invalid(format!("fold {f} is chosen twice")));
                }
                seen.push(f);
                Ok((f, self.folds[f - 1].as_slice()))
            })
            .collect()
    }

    /// Checks that every photo of `pairs` exists under `dir`: the error names the first
    /// missing path and the line that names it.
    pub fn check_images<'a>(
        &self,
        pairs: impl IntoIterator<Item = &'a Pair>,
        dir: &Path,
    ) -> Result<()> {
        for pair in pairs {
            for photo in [&pair.a, &pair.b] {
                let path = photo.path(dir);
                if !path.is_file() {
                    return Err(EvalError::MissingImage {
                        path: path.display().to_string(),
                        file: self.file.clone(),
                        line: pair.line,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "2\t1\nann\t1\t2\nann\t1\tbob\t1\n\nbob\t1\t2\nbob\t2\tcat\t3\n";

    fn parse(text: &str) -> Result<PairsFile> {
        PairsFile::parse(text, "pairs.txt")
    }

    #[test]
    fn a_good_file_gives_each_fold_its_matched_then_mismatched_pairs() {
        let file = parse(GOOD).unwrap();
        assert_eq!(file.folds.len(), 2);
        let p = |name: &str, index| Photo {
            name: name.into(),
            index,
        };
        assert_eq!(
            file.folds[1],
            vec![
                Pair {
                    a: p("bob", 1),
                    b: p("bob", 2),
                    same: true,
                    line: 5
                },
                Pair {
                    a: p("bob", 2),
                    b: p("cat", 3),
                    same: false,
                    line: 6
                },
            ]
        );
        assert_eq!(
            p("bob", 12).path(Path::new("/d")),
            PathBuf::from("/d/bob/bob_0012.jpg")
        );
        let chosen = file.select(Some(&[2])).unwrap();
        assert_eq!((chosen.len(), chosen[0].0), (1, 2));
        assert_eq!(file.select(None).unwrap().len(), 2);
    }

    #[test]
    fn malformed_files_give_an_error_naming_the_line() {
        let cases = [
            ("no header", "", "pairs.txt line 1: empty file"),
            ("header of one field", "2\n", "line 1: expected a header"),
            (
                "zero folds",
                "0\t1\n",
                "line 1: the number of folds must be",
            ),
            (
                "mismatched line where a matched one belongs",
                "1\t1\nann\t1\tbob\t1\nann\t1\tbob\t1\n",
                "line 2: fold 1: expected a matched pair",
            ),
            (
                "matched line where a mismatched one belongs",
                "1\t1\nann\t1\t2\nann\t1\t2\n",
                "line 3: fold 1: expected a mismatched pair",
            ),
            (
                "photo number 0",
                "1\t1\nann\t0\t2\nann\t1\tbob\t1\n",
                "line 2: photo numbers start at 1, got `0`",
            ),
            (
                "photo number not a number",
                "1\t1\nann\t1\t2\nann\tx\tbob\t1\n",
                "line 3: photo numbers start at 1, got `x`",
            ),
            (
                "too few lines",
                "2\t1\nann\t1\t2\nann\t1\tbob\t1\n",
                "file ends early: fold 2",
            ),
            (
                "too many lines",
                "1\t1\nann\t1\t2\nann\t1\tbob\t1\ncat\t1\t2\n",
                "line 4: unexpected line",
            ),
        ];
        for (what, text, expected) in cases {
            match parse(text) {
                Ok(_) => panic!("{what}: parsed"),
                Err(e) => assert!(e.to_string().contains(expected), "{what}: {e}"),
            }
        }
    }

    #[test]
    fn unknown_or_repeated_folds_are_refused() {
        let file = parse(GOOD).unwrap();
        for (what, chosen) in [
            ("fold 0", vec![0]),
            ("fold 3", vec![3]),
            ("twice", vec![1, 1]),
        ] {
            assert!(file.select(Some(&chosen)).is_err(), "{what}");
        }
    }

    #[test]
    fn a_missing_image_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = parse(GOOD).unwrap();
        for (name, idx) in [("ann", 1), ("ann", 2), ("bob", 1)] {
            let photo = Photo {
                name: name.into(),
                index: idx,
            };
            let path = photo.path(dir.path());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"").unwrap();
        }
        file.check_images(&file.folds[0], dir.path()).unwrap();
        let err = file
            .check_images(file.folds.iter().flatten(), dir.path())
            .unwrap_err()
            .to_string();
        let missing = dir.path().join("bob/bob_0002.jpg");
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("pairs.txt line 5"),
            "{err}"
        );
    }
}
