// Shared by both targets: renders a recipe's problems exactly as `kiln` does on a pipe (ASCII
// theme, no colours, 100 columns), so a panic or a hang in rendering is found too.

pub fn render(e: &kiln::diag::RecipeErrors) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme, ThemeCharacters, ThemeStyles};
    let theme = GraphicalTheme { characters: ThemeCharacters::ascii(), styles: ThemeStyles::none() };
    let mut out = String::new();
    let _ = GraphicalReportHandler::new_themed(theme).with_width(100).render_report(&mut out, e);
    out
}
