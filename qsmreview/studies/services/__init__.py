"""Services of the studies app: keyword-only ``<entity>_<action>`` workflows."""
