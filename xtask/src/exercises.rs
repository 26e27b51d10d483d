//! `cargo xtask exercises [NAME...]`: checks the reader's answers to the
//! book's exercises, as rustlings does. Each answer is a file of
//! `exercises/` that starts as the solution's signatures with `todo!()`
//! for bodies; the tests of `tests/exercises/NAME.rs` run against it (the
//! `exercises` feature), and each exercise is said to pass, to fail (with
//! the test that failed and its first lines), or to be still to do.

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};

/// One exercise's answer file and where it stands.
struct Answer {
    name: String,
    /// The line of its first `todo!()`, if one is left.
    todo_at: Option<usize>,
}

/// The answers in `exercises/`, by name.
fn answers(root: &Path) -> std::io::Result<Vec<Answer>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(root.join("exercises"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path)?;
            let todo_at = text
                .lines()
                .position(|line| !line.trim_start().starts_with("//") && line.contains("todo!("))
                .map(|i| i + 1);
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            found.push(Answer {
                name: name.into_owned(),
                todo_at,
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// How one test ended, from `cargo test`'s output.
struct Outcome {
    test: String,
    passed: bool,
    /// The first lines of its panic, for a failure.
    why: Vec<String>,
}

/// The `test NAME ... ok|FAILED` lines, each failure with the first lines
/// of its `---- NAME stdout ----` section.
fn outcomes(output: &str) -> Vec<Outcome> {
    let mut found: Vec<Outcome> = output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (test, result) = rest.rsplit_once(" ... ")?;
            let passed = match result {
                "ok" => true,
                "FAILED" => false,
                _ => return None,
            };
            Some(Outcome {
                test: test.to_string(),
                passed,
                why: Vec::new(),
            })
        })
        .collect();
    for outcome in found.iter_mut().filter(|o| !o.passed) {
        let heading = format!("---- {} stdout ----", outcome.test);
        if let Some(at) = output.find(&heading) {
            outcome.why = output[at + heading.len()..]
                .lines()
                .filter(|line| !line.trim().is_empty())
                .take_while(|line| {
                    !line.starts_with("----")
                        && !line.starts_with("note:")
                        && !line.starts_with("stack backtrace:")
                })
                .take(4)
                .map(str::to_string)
                .collect();
        }
    }
    found
}

pub fn run(root: &Path, asked: &[String]) -> ExitCode {
    let answers = match answers(root) {
        Ok(answers) => answers,
        Err(error) => {
            eprintln!("xtask: cannot read exercises/: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(unknown) = asked
        .iter()
        .find(|a| !answers.iter().any(|e| &e.name == *a))
    {
        let names: Vec<&str> = answers.iter().map(|a| a.name.as_str()).collect();
        eprintln!(
            "xtask: no exercise {unknown:?}; there are: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    // Asked for by name, or else every answer with no todo!() left.
    let checked: Vec<&Answer> = answers
        .iter()
        .filter(|a| {
            if asked.is_empty() {
                a.todo_at.is_none()
            } else {
                asked.contains(&a.name)
            }
        })
        .collect();
    let mut results = Vec::new();
    if !checked.is_empty() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let filters: Vec<String> = checked.iter().map(|a| format!("{}::", a.name)).collect();
        println!("xtask: testing exercises/{{{}}}.rs", names(&checked));
        let output = Command::new(cargo)
            .args(["test", "--test", "exercises", "--features", "exercises"])
            .arg("--")
            .args(&filters)
            .current_dir(root)
            .output();
        let output = match output {
            Ok(output) => output,
            Err(error) => {
                eprintln!("xtask: could not run cargo: {error}");
                return ExitCode::FAILURE;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        results = outcomes(&stdout);
        if results.is_empty() && !output.status.success() {
            // It did not build: the compiler's words say where.
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
            println!("xtask: the answers do not compile (above); fix them and run it again");
            return ExitCode::FAILURE;
        }
    }
    let mut all_passed = true;
    for answer in &answers {
        let mine: Vec<&Outcome> = results
            .iter()
            .filter(|o| o.test.starts_with(&format!("{}::", answer.name)))
            .collect();
        let todo = answer
            .todo_at
            .map(|line| format!(" (exercises/{}.rs:{line} still has a todo!())", answer.name))
            .unwrap_or_default();
        if !checked.iter().any(|c| c.name == answer.name) {
            println!("  to do   {}{todo}", answer.name);
            continue;
        }
        match mine.iter().find(|o| !o.passed) {
            None if !mine.is_empty() => {
                let checks = if mine.len() == 1 { "check" } else { "checks" };
                println!("  passed  {} ({} {checks})", answer.name, mine.len());
            }
            None => {
                all_passed = false;
                println!("  ?       {}: no test ran", answer.name);
            }
            Some(failed) => {
                all_passed = false;
                println!("  FAILED  {}: {}{todo}", answer.name, failed.test);
                for line in &failed.why {
                    println!("            {line}");
                }
            }
        }
    }
    if checked.is_empty() {
        println!(
            "xtask: every answer still has a todo!(); open one of exercises/, then run \
             `cargo xtask exercises NAME` (the book's chapter of that name says what it asks)"
        );
        return ExitCode::SUCCESS;
    }
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn names(answers: &[&Answer]) -> String {
    let names: Vec<&str> = answers.iter().map(|a| a.name.as_str()).collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::outcomes;

    #[test]
    fn a_failure_is_told_with_its_panic() {
        let output = "\nrunning 2 tests\n\
            test pools::answers_in_order ... ok\n\
            test reactor::each_line ... FAILED\n\n\
            failures:\n\n\
            ---- reactor::each_line stdout ----\n\n\
            thread 'reactor::each_line' panicked at tests/exercises/reactor.rs:9:5:\n\
            not yet implemented\n\
            note: run with `RUST_BACKTRACE=1`\n\n\
            failures:\n    reactor::each_line\n";
        let found = outcomes(output);
        assert_eq!(found.len(), 2);
        assert!(found[0].passed && !found[1].passed);
        assert_eq!(found[1].test, "reactor::each_line");
        assert_eq!(
            found[1].why,
            [
                "thread 'reactor::each_line' panicked at tests/exercises/reactor.rs:9:5:",
                "not yet implemented"
            ]
        );
    }
}
