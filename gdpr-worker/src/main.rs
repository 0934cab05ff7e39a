fn main() -> anyhow::Result<()> {
    shared_model::service::main(&gdpr_worker::SERVICE)
}
