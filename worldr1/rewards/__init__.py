"""Reward terms (s_recon, s_traj, ...), their combination, group advantages and guards."""
