// Shared by both targets: renders a recipe's problems exactly as `kiln` does on a pipe (ASCII
// theme, no colours, 100 columns), so a panic or a hang in rendering is found too.

pub fn render(e: &kiln::diag::RecipeErrors) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme, ThemeCharacters, ThemeStyles};
    let theme = GraphicalTheme { characters: ThemeCharacters::ascii(), styles: ThemeStyles::none() };
    let mut out = String::new();
    let _ = GraphicalReportHandler::new_themed(theme).with_width(100).render_report(&mut out, e);
    out
}

/// Keeps the input about to run in the file `KILN_FUZZ_LAST` names, when set: a stack overflow
/// kills the process before libFuzzer can write its artifact, and this file then holds it. The
/// file is opened once and rewritten in place (one write and one truncate per run), so that
/// keeping it costs little next to the run itself.
pub fn keep_last(data: &[u8]) {
    use std::os::unix::fs::FileExt;
    use std::sync::OnceLock;
    static FILE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = std::env::var_os("KILN_FUZZ_LAST")?;
        std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(path).ok()
    });
    if let Some(f) = file {
        let _ = f.write_all_at(data, 0);
        let _ = f.set_len(data.len() as u64);
    }
}
