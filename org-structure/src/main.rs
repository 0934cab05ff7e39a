fn main() -> anyhow::Result<()> {
    shared_model::service::main(&org_structure::SERVICE)
}
