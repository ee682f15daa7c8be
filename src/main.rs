use anyhow::Result;

fn main() -> Result<()> {
    crashdeck::ui::run(&Default::default(), "crashdeck")
}
