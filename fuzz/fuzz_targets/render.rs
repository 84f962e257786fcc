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
/// kills the process before libFuzzer can write its artifact, and this file then holds it.
pub fn keep_last(data: &[u8]) {
    use std::sync::OnceLock;
    static PATH: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    if let Some(path) = PATH.get_or_init(|| std::env::var_os("KILN_FUZZ_LAST").map(Into::into)) {
        let _ = std::fs::write(path, data);
    }
}
