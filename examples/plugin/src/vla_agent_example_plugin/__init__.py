"""An example vla-agent plugin: the ``place_behind`` skill and the ``logged`` arm driver."""
