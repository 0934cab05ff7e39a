fn main() -> anyhow::Result<()> {
    shared_model::service::main(&partition_keys::SERVICE)
}
