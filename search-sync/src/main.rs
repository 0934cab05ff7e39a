fn main() -> anyhow::Result<()> {
    shared_model::service::main(&search_sync::SERVICE)
}
