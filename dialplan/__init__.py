"""The 128 dialplan, generated not hand-edited: templates + database -> an extensions include
file (render), validated (check), compared with what is deployed (diff), deployed with a backup,
reloaded over AMI and confirmed live, or rolled back."""
