"""The controller: an LSTM policy over any decision list, REINFORCE, the controller and derive
steps."""
