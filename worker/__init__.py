"""leadterra-router: routes Leadterra's interested replies to SDRs and their follow-ups out."""
