"""
A character-level vanilla RNN in plain numpy (min-char-rnn), as run under Python 2.
Trains on input.txt with Adagrad until stopped, printing a sample now and then.
"""
import numpy as np

# read the text
data = open('input.txt', 'r').read() # any plain text
chars = list(set(data))
data_size, vocab_size = len(data), len(chars)
print 'data has %d characters, %d unique.' % (data_size, vocab_size)
char_to_ix = { ch:i for i,ch in enumerate(chars) }
ix_to_char = { i:ch for i,ch in enumerate(chars) }

# settings
hidden_size = 100 # number of hidden units
seq_length = 25 # characters per chunk (steps of BPTT)
learning_rate = 1e-1

# weights, small random; biases zero
Wxh = np.random.randn(hidden_size, vocab_size)*0.01 # x -> h
Whh = np.random.randn(hidden_size, hidden_size)*0.01 # h -> h
Why = np.random.randn(vocab_size, hidden_size)*0.01 # h -> y
bh = np.zeros((hidden_size, 1))
by = np.zeros((vocab_size, 1))

def lossFun(inputs, targets, hprev):
  """
  inputs, targets: lists of character indices (targets is inputs shifted by one)
  hprev: (hidden_size, 1) hidden state carried over from the previous chunk
  gives back the loss, the five gradients and the last hidden state
  """
  xs, hs, ys, ps = {}, {}, {}, {}
  hs[-1] = np.copy(hprev)
  loss = 0
  # forward through the chunk
  for t in xrange(len(inputs)):
    xs[t] = np.zeros((vocab_size,1)) # one-hot column
    xs[t][inputs[t]] = 1
    hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t-1]) + bh)
    ys[t] = np.dot(Why, hs[t]) + by # scores
    ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t])) # softmax
    loss += -np.log(ps[t][targets[t],0]) # cross-entropy
  # backward, last step first
  dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
  dbh, dby = np.zeros_like(bh), np.zeros_like(by)
  dhnext = np.zeros_like(hs[0])
  for t in reversed(xrange(len(inputs))):
    dy = np.copy(ps[t])
    dy[targets[t]] -= 1 # softmax + cross-entropy gradient
    dWhy += np.dot(dy, hs[t].T)
    dby += dy
    dh = np.dot(Why.T, dy) + dhnext # from the output and from step t + 1
    dhraw = (1 - hs[t] * hs[t]) * dh # through the tanh
    dbh += dhraw
    dWxh += np.dot(dhraw, xs[t].T)
    dWhh += np.dot(dhraw, hs[t-1].T)
    dhnext = np.dot(Whh.T, dhraw)
  for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
    np.clip(dparam, -5, 5, out=dparam) # keep exploding gradients in check
  return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs)-1]

def sample(h, seed_ix, n):
  """
  draw n character indices from the model, starting from hidden state h
  and feeding seed_ix as the first character
  """
  x = np.zeros((vocab_size, 1))
  x[seed_ix] = 1
  ixes = []
  for t in xrange(n):
    h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
    y = np.dot(Why, h) + by
    p = np.exp(y) / np.sum(np.exp(y))
    ix = np.random.choice(range(vocab_size), p=p.ravel())
    x = np.zeros((vocab_size, 1))
    x[ix] = 1
    ixes.append(ix)
  return ixes

n, p = 0, 0
mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
mbh, mby = np.zeros_like(bh), np.zeros_like(by) # Adagrad sums of squares
smooth_loss = -np.log(1.0/vocab_size)*seq_length # loss of a uniform guess
while True:
  # next chunk; back to the start (and a fresh h) at the end of the text
  if p+seq_length+1 >= len(data) or n == 0:
    hprev = np.zeros((hidden_size,1))
    p = 0
  inputs = [char_to_ix[ch] for ch in data[p:p+seq_length]]
  targets = [char_to_ix[ch] for ch in data[p+1:p+seq_length+1]]

  # show what the model writes every 100 iterations
  if n % 100 == 0:
    sample_ix = sample(hprev, inputs[0], 200)
    txt = ''.join(ix_to_char[ix] for ix in sample_ix)
    print '----\n %s \n----' % (txt, )

  # loss and gradients on this chunk
  loss, dWxh, dWhh, dWhy, dbh, dby, hprev = lossFun(inputs, targets, hprev)
  smooth_loss = smooth_loss * 0.999 + loss * 0.001
  if n % 100 == 0: print 'iter %d, loss: %f' % (n, smooth_loss)

  # Adagrad step
  for param, dparam, mem in zip([Wxh, Whh, Why, bh, by],
                                [dWxh, dWhh, dWhy, dbh, dby],
                                [mWxh, mWhh, mWhy, mbh, mby]):
    mem += dparam * dparam
    param += -learning_rate * dparam / np.sqrt(mem + 1e-8)

  p += seq_length
  n += 1
