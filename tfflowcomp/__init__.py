"""tfflowcomp: lossy image compression with a normalizing-flow transform."""
