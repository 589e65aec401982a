"""Peer models of other equivariance libraries, built for the robustness benchmark only (optional packages)."""
