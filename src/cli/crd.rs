//! `switchboard crd`: print the `SSHRoute` CustomResourceDefinition generated
//! from the Rust types (`kubectl apply -f -` it, or compare with
//! `deploy/crd.yaml`).

use super::Error;

/// Prints the CRD as YAML on stdout.
#[cfg(feature = "kubernetes")]
pub fn run() -> Result<(), Error> {
    let yaml = crate::routes::kube::crd::crd_yaml()
        .map_err(|e| Error::Runtime(anyhow::anyhow!("encoding the CRD: {e}")))?;
    print!("{yaml}");
    Ok(())
}

/// Without the `kubernetes` feature there is no CRD to print.
#[cfg(not(feature = "kubernetes"))]
pub fn run() -> Result<(), Error> {
    Err(Error::Invalid(anyhow::anyhow!(
        "this switchboard was built without Kubernetes support (cargo feature \"kubernetes\")"
    )))
}
